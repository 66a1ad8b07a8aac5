// npx tsx bench/hostile-stanza.ts [--no-build] [--json] [--before=FILE.json] [--write]
//
// What the stream parser costs at the edge, in two figures:
// (a) a legitimate login's latency behind one hostile stanza (60,000 attributes, 720 KiB, from a
//     requester that is not allowed; and 60,000 xmlns:p declarations), through the component and
//     the fake XEP-0114 server the integration tests use, against the same login with nothing
//     ahead of it;
// (b) the component's CPU per request at steady load (instant generic script, pipelined ×2, 256 in
//     flight; the load generator and harness of `npm run bench`).
// About a minute. --json prints the figures as JSON (to compare builds: run this file from another
// checkout with --json, then here with --before=THAT.json); --write puts the Markdown section into
// BENCHMARKS.md (section "stream-parser"; `npm run bench` keeps it).
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ComponentProcess } from '../support/component-process.js';
import { FakeXmppServer } from '../test/support/fake-server.js';
import { BenchScript } from './bench-script.js';
import { REPO_ROOT_FROM_BENCH as REPO_ROOT } from './child.js';
import { ComponentUnderLoad } from './component-load.js';
import { replaceSection } from './kept-sections.js';
import { describeMachine } from './machine.js';
import { Progress } from './progress.js';
import { median, medianOf } from './stats.js';

const DOMAIN = 'auth.example.com';
const BASELINE_LOGINS = 30;
const HOSTILE_REPEATS = 3;
const LOAD_RUNS = 3;
const LOAD_RUN_MS = 1500;
const LOAD_WARMUP_MS = 500;

interface HostileShape {
  label: string;
  stanza: (id: string) => string;
}

const SHAPES: HostileShape[] = [
  {
    label: '60,000 attributes (720 KiB)',
    stanza: (id) => `<iq type='get' id='${id}' from='evil.example' to='${DOMAIN}'${attributes(60_000, (i) => ` a${i}='${'x'.repeat(2 + (i % 2))}'`)}/>`,
  },
  {
    // As many as fit under the 1 MiB bound.
    label: '45,000 xmlns:p declarations (940 KiB)',
    stanza: (id) => `<iq type='get' id='${id}' from='evil.example' to='${DOMAIN}'${attributes(45_000, (i) => ` xmlns:p${i}='u${i}'`)}/>`,
  },
];

function attributes(count: number, one: (i: number) => string): string {
  let out = '';
  for (let i = 0; i < count; i++) out += one(i);
  return out;
}

export interface Figures {
  revision: string;
  baselineMs: number;
  hostile: Array<{ label: string; bytes: number; loginMs: number }>;
  rate: number;
  cpuUsPerRequest: number;
}

let next = 0;
const login = (id: string) =>
  `<iq type='get' id='${id}' from='example.com' to='${DOMAIN}'><auth xmlns='urn:x-extauth:0' user='user${next % 64}'>password-${next}</auth></iq>`;

async function loginLatency(script: BenchScript, progress: Progress): Promise<Pick<Figures, 'baselineMs' | 'hostile'>> {
  progress.scenarioStart('a login behind a hostile stanza');
  const secret = randomUUID();
  const server = new FakeXmppServer(secret);
  const port = await server.listen();
  const component = await ComponentProcess.start({
    service: `xmpp://127.0.0.1:${port}`,
    domain: DOMAIN,
    secret,
    command: script.command('generic', 0).line,
    protocol: 'generic',
    env: { LOG_LEVEL: 'error' },
    label: 'bench component',
    probe: async () => server.accepted > 0,
  });
  const ask = async (before?: string): Promise<number> => {
    const id = `login-${++next}`;
    const started = performance.now();
    if (before !== undefined) server.writeRaw(before);
    await server.request(login(id), id, 120_000);
    return performance.now() - started;
  };
  try {
    for (let i = 0; i < BASELINE_LOGINS; i++) await ask();
    const baseline: number[] = [];
    for (let i = 0; i < BASELINE_LOGINS; i++) baseline.push(await ask());
    const hostile: Figures['hostile'] = [];
    for (const shape of SHAPES) {
      const times: number[] = [];
      for (let i = 0; i < HOSTILE_REPEATS; i++) {
        const id = `hostile-${++next}`;
        const stanza = shape.stanza(id);
        const refused = server.waitReply(id, 120_000);
        times.push(await ask(stanza));
        await refused;
        progress.update(`${shape.label}: ${Math.round(times[times.length - 1]!)} ms`, true);
      }
      hostile.push({ label: shape.label, bytes: Buffer.byteLength(shape.stanza('hostile-1')), loginMs: median(times) });
    }
    if (server.accepted !== 1) throw new Error('the component reconnected during the measurement');
    return { baselineMs: median(baseline), hostile };
  } finally {
    await component.stop();
    await server.close();
  }
}

async function cpuPerRequest(script: BenchScript, progress: Progress): Promise<Pick<Figures, 'rate' | 'cpuUsPerRequest'>> {
  progress.scenarioStart('instant generic, pipelined ×2, 256 in flight');
  const loaded = await ComponentUnderLoad.start({
    protocol: 'generic',
    script: script.command('generic', 0),
    env: { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'false' },
  });
  try {
    const runs = [];
    for (let i = 0; i <= LOAD_RUNS; i++) {
      const name = i === 0 ? 'warm-up' : `run ${i}/${LOAD_RUNS}`;
      const limits = { maxRequests: 1_000_000, durationMs: i === 0 ? LOAD_WARMUP_MS : LOAD_RUN_MS, window: 256 };
      const result = await loaded.measure({ limits, onProgress: (_sent, done) => progress.update(`${name}: ${done} answered`) });
      progress.update(`${name}: ${Math.round(result.rate)}/s, ${result.componentCpuUsPerRequest.toFixed(1)} µs CPU/request`, true);
      if (i > 0) runs.push(result);
    }
    return { rate: medianOf(runs, (r) => r.rate), cpuUsPerRequest: medianOf(runs, (r) => r.componentCpuUsPerRequest) };
  } finally {
    await loaded.stop();
  }
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function render(after: Figures, before: Figures | null, startedAt: Date): string {
  const machine = describeMachine(REPO_ROOT);
  const lines = [
    '## Stream parser: hostile stanza and CPU per request',
    '',
    `Generated by \`npx tsx bench/hostile-stanza.ts --write\` on ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC (${machine.cores} cores, Node ${machine.node}, load average at start ${machine.loadAverage}). A login's latency is the median of ${BASELINE_LOGINS} logins alone, and of ${HOSTILE_REPEATS} logins each sent right behind one hostile stanza from a requester that is not allowed, through the component and the fake XEP-0114 server of the integration tests (instant generic script). CPU per request: median of ${LOAD_RUNS} runs of ${LOAD_RUN_MS} ms, instant generic script pipelined ×2, 256 in flight, the load generator of \`npm run bench\`.${before === null ? '' : ` "Before" is the same file run from a checkout of source ${before.revision} (\`--json\`, then \`--before=FILE\` here).`}`,
    '',
  ];
  const columns = before === null ? ['', after.revision] : ['', `before (${before.revision})`, `after (${after.revision})`, 'after ÷ before'];
  lines.push(`| ${columns.join(' | ')} |`, `|${columns.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`);
  const row = (label: string, pick: (f: Figures) => number, digits: number, unit: string) => {
    const cells = [label, `${fmt(pick(after), digits)} ${unit}`];
    if (before !== null) {
      cells.splice(1, 0, `${fmt(pick(before), digits)} ${unit}`);
      cells.push(`${fmt(pick(after) / pick(before), 2)}×`);
    }
    lines.push(`| ${cells.join(' | ')} |`);
  };
  row('a login, nothing ahead of it', (f) => f.baselineMs, 1, 'ms');
  for (const [i, shape] of after.hostile.entries()) row(`a login behind ${shape.label}`, (f) => f.hostile[i]!.loginMs, 0, 'ms');
  row('IQs/s at steady load', (f) => f.rate, 0, '/s');
  row('component CPU per request', (f) => f.cpuUsPerRequest, 1, 'µs');
  lines.push('');
  const load = Number(machine.loadAverage.split(' ')[0]);
  if (load > machine.cores / 2)
    lines.push(
      `- Other work was running (load average ${load} on ${machine.cores} cores): the latencies behind a hostile stanza include waiting for a core, and the steady-load rate moves a lot from run to run; CPU per request holds up better.`,
    );
  lines.push(
    "- Behind a hostile stanza a login waits for the whole stanza to be read and refused (`forbidden`): that wait is the parser's cost for the stanza, linear in its size whatever its shape (`test/unit/stream-parser-cost.test.ts`).",
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const progress = new Progress();
  const startedAt = new Date();
  if (!args.includes('--no-build')) {
    progress.note('building the component (tsc -p tsconfig.json)');
    execFileSync(process.execPath, [resolve(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const beforeFile = args.find((a) => a.startsWith('--before='))?.slice('--before='.length);
  const before = beforeFile === undefined ? null : (JSON.parse(readFileSync(beforeFile, 'utf8')) as Figures);
  const script = BenchScript.build();
  process.once('exit', () => script.remove());
  try {
    const figures: Figures = {
      revision: describeMachine(REPO_ROOT).revision,
      ...(await loginLatency(script, progress)),
      ...(await cpuPerRequest(script, progress)),
    };
    progress.endLine();
    if (args.includes('--json')) {
      process.stdout.write(`${JSON.stringify(figures)}\n`);
      return;
    }
    const section = render(figures, before, startedAt);
    process.stdout.write(`${section}\n`);
    if (args.includes('--write')) {
      const file = resolve(REPO_ROOT, 'BENCHMARKS.md');
      writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), 'stream-parser', section));
      progress.note('wrote the "stream-parser" section of BENCHMARKS.md');
    }
  } finally {
    script.remove();
  }
}

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main().catch((error: unknown) => {
  process.stderr.write(`hostile-stanza bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
