// npm run bench [-- --full] [--scale=F] [--only=prosody,ejabberd,component] [--no-build] [--out=FILE]
// npm run bench -- --render=bench-results/full.json     (the report again from saved figures)
//
// One run, one report: logins through every path on every server generation found (full) or the
// newest of each (quick), the component's own costs, and what they mean. --full writes
// BENCHMARKS.md, docs/bench/*.svg and the README's performance summary; a quick run writes
// bench-results/quick.md (and its charts there) and touches nothing committed.
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, relative, resolve } from 'node:path';
import { ejabberdInstalls } from '../support/ejabberd.js';
import { prosodyInstalls } from '../support/prosody.js';
import { BenchScript } from './bench-script.js';
import { type BenchSize, CONCURRENCY, FULL, type LoginPath, pathLabel, pathsFor, QUICK, scaled, type ServerKind, USERS } from './cases.js';
import { writeCharts } from './charts.js';
import { REPO_ROOT_FROM_BENCH as REPO_ROOT } from './child.js';
import { measureComponent } from './component-cases.js';
import { findInProcessModule } from './in-process-module.js';
import { LoginMeter } from './login-bench.js';
import { type CaseTools, type Generation, startCase, unavailable } from './login-case.js';
import { describeMachine, loadAverage } from './machine.js';
import { Progress } from './progress.js';
import { readmeSummary, renderReport, replaceReadmeSummary } from './report.js';
import type { BenchResults, LoginSample } from './results.js';

type Part = 'prosody' | 'ejabberd' | 'component';
const PARTS: Part[] = ['prosody', 'ejabberd', 'component'];

interface Options {
  size: BenchSize;
  build: boolean;
  only: Set<Part>;
  out: string | undefined;
  render: string | undefined;
}

function parseOptions(argv: string[]): Options {
  let size = QUICK;
  let factor = 1;
  const options: Options = { size, build: true, only: new Set(PARTS), out: undefined, render: undefined };
  for (const arg of argv) {
    if (arg === '--full') size = FULL;
    else if (arg === '--quick') size = QUICK;
    else if (arg === '--no-build') options.build = false;
    else if (arg.startsWith('--scale=')) factor = Number(arg.slice('--scale='.length));
    else if (arg.startsWith('--only=')) {
      const wanted = arg.slice('--only='.length).split(',');
      const unknown = wanted.filter((p) => !(PARTS as string[]).includes(p));
      if (unknown.length > 0) usage(`unknown part ${unknown.join(', ')} (parts: ${PARTS.join(', ')})`);
      options.only = new Set(wanted as Part[]);
    } else if (arg.startsWith('--out=')) options.out = resolve(arg.slice('--out='.length));
    else if (arg.startsWith('--render=')) options.render = resolve(arg.slice('--render='.length));
    else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  if (!(factor > 0 && factor <= 1)) usage('--scale takes a factor above 0 and at most 1');
  options.size = factor === 1 ? size : scaled(size, factor);
  return options;
}

function usage(problem?: string): never {
  if (problem) process.stderr.write(`bench: ${problem}\n`);
  process.stderr.write(
    'usage: npm run bench [-- --full] [--scale=F] [--only=prosody,ejabberd,component] [--no-build] [--out=FILE] [--render=JSON]\n' +
      '  --full       every server generation, two rounds (under 20 minutes on 2 cores); writes BENCHMARKS.md,\n' +
      '               docs/bench/*.svg and the README summary. Default: quick (the newest of each server, one round;\n' +
      '               about 4 minutes), written to bench-results/quick.md\n' +
      '  --scale=F    shorten every measurement by F (0 < F ≤ 1): a check of the harness, not figures\n' +
      '  --render=F   write the report again from a saved bench-results/*.json\n',
  );
  process.exit(problem ? 2 : 0);
}

/** Every generation of each server (full) or the newest (quick; EXTAUTH_BENCH_PROSODY / _EJABBERD pick another). */
function generationsToRun(size: BenchSize, only: Set<Part>): Generation[] {
  const pick = <T extends { version: string }>(installs: T[], wanted: string | undefined): T[] => {
    if (wanted) return installs.filter((i) => i.version === wanted || i.version.startsWith(`${wanted}.`));
    return size.generations === 'all' ? installs : installs.slice(-1);
  };
  return [
    ...(only.has('prosody')
      ? pick(prosodyInstalls(), process.env.EXTAUTH_BENCH_PROSODY).map((install): Generation => ({ kind: 'prosody', install, label: install.label }))
      : []),
    ...(only.has('ejabberd')
      ? pick(ejabberdInstalls(), process.env.EXTAUTH_BENCH_EJABBERD).map((install): Generation => ({ kind: 'ejabberd', install, label: install.label }))
      : []),
  ];
}

/** SCRAM-SHA-256 credentials for the bench users (what a backend derives from its stored hashes). */
function writeScramFile(dir: string): string {
  const lines: string[] = [];
  for (let k = 0; k < USERS; k++) {
    const salt = randomBytes(16);
    const iterations = 4096;
    const salted = pbkdf2Sync(`pw-u${k}`, salt, iterations, 32, 'sha256');
    const stored = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    const server = createHmac('sha256', salted).update('Server Key').digest();
    lines.push(`u${k} 1:${iterations}:${salt.toString('base64')}:${stored.toString('base64')}:${server.toString('base64')}`);
  }
  const file = join(dir, 'scram-credentials');
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** One bcrypt verification at cost 10 with the backends' own library, if it is installed. */
async function measureBcrypt(): Promise<BenchResults['bcrypt']> {
  const modulePath = join(REPO_ROOT, 'examples/backends/node_modules/@node-rs/bcrypt');
  if (!existsSync(modulePath)) return { skipped: 'the backends are not installed (examples/backends/install.sh)' };
  const bcrypt = createRequire(join(REPO_ROOT, 'examples/backends/package.json'))('@node-rs/bcrypt') as {
    hashSync(password: string, cost: number): string;
    verifySync(password: string, hash: string): boolean;
  };
  const hash = bcrypt.hashSync('pw-u0', 10);
  const costMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    bcrypt.verifySync('pw-u0', hash);
    costMs.push(performance.now() - started);
  }
  return { costMs };
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const { size } = options;
  const progress = new Progress();
  const resultsDir = resolve(REPO_ROOT, 'bench-results');

  let results: BenchResults;
  if (options.render) {
    results = JSON.parse(readFileSync(options.render, 'utf8')) as BenchResults;
  } else {
    if (options.build) {
      progress.note('building the component (tsc -p tsconfig.json)');
      execFileSync(process.execPath, [resolve(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
    }
    results = await measureEverything(options, progress);
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `${size.name}.json`), `${JSON.stringify(results, null, 1)}\n`);
  }
  // A full run's report (or a saved one, re-rendered) is the committed one; a quick run's is not.
  const full = results.mode === 'full';
  const out = options.out ?? (full ? resolve(REPO_ROOT, 'BENCHMARKS.md') : join(resultsDir, `${results.mode}.md`));
  const chartDir = full && !options.out ? resolve(REPO_ROOT, 'docs/bench') : join(resultsDir, 'charts');
  const charts = await writeCharts(results, chartDir);
  writeFileSync(
    out,
    renderReport(
      results,
      charts.map((c) => ({ file: relative(resolve(out, '..'), c.file), title: c.title })),
    ),
  );
  progress.note(`wrote ${relative(process.cwd(), out)} and ${charts.length} charts in ${relative(process.cwd(), chartDir)}`);
  if (full && !options.out) {
    const readme = resolve(REPO_ROOT, 'README.md');
    writeFileSync(readme, replaceReadmeSummary(readFileSync(readme, 'utf8'), readmeSummary(results, 'docs/bench')));
    progress.note('updated the performance summary in README.md');
  }
}

async function measureEverything(options: Options, progress: Progress): Promise<BenchResults> {
  const { size } = options;
  const startedAt = new Date();
  const machine = describeMachine(REPO_ROOT);
  if (Number(machine.loadAverage.split(' ')[0]) > 0.5)
    progress.note(`note: load average ${machine.loadAverage}: other work on this machine will skew the figures`);
  const script = BenchScript.build();
  process.once('exit', () => script.remove()); // also after Ctrl-C
  const module = findInProcessModule();
  const tools: CaseTools = { script, inProcess: 'missing' in module ? undefined : module, scramFile: writeScramFile(script.workDir) };
  const generations = generationsToRun(size, options.only);
  const results: BenchResults = {
    mode: size.name,
    size,
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    startedAt: startedAt.toISOString(),
    durationS: 0,
    machine,
    loadAverageEnd: '',
    generations: generations.map((g) => ({ label: g.label, server: g.kind })),
    skipped: [],
    inProcessModule: 'missing' in module ? module.missing : module.source,
    samples: [],
    component: { skipped: 'not selected (--only)' },
    bcrypt: { skipped: 'not measured' },
  };
  try {
    if (options.only.has('component')) {
      try {
        results.component = await measureComponent(script, size, progress);
      } catch (error) {
        results.component = { skipped: `failed: ${firstLine(error)}` };
        progress.note(`component figures failed: ${firstLine(error)}`);
      }
      results.bcrypt = await measureBcrypt().catch((error: unknown) => ({ skipped: `failed: ${firstLine(error)}` }));
    }
    const meter = generations.length > 0 ? await LoginMeter.start() : undefined;
    try {
      for (let round = 1; round <= size.rounds; round++) {
        // Round 2 runs the generations and their paths in reverse: drift on the machine falls on every path alike.
        const order = round % 2 === 1 ? generations : [...generations].reverse();
        for (const gen of order) {
          const paths = round % 2 === 1 ? pathsFor(gen.kind) : pathsFor(gen.kind).reverse();
          for (const path of paths) {
            const label = `${gen.label}: ${pathLabel(gen.kind, path)}`;
            const why = unavailable(gen.kind, path, tools);
            if (why) {
              if (round === 1) {
                results.skipped.push({ generation: gen.label, path: pathLabel(gen.kind, path), reason: why });
                progress.note(`${label}: skipped, ${why}`);
              }
              continue;
            }
            progress.scenarioStart(`round ${round}/${size.rounds}, ${label}`);
            try {
              results.samples.push(...(await measurePath(gen, path, round, tools, meter!, size, progress)));
            } catch (error) {
              results.skipped.push({ generation: gen.label, path: `${pathLabel(gen.kind, path)} (round ${round})`, reason: `failed: ${firstLine(error)}` });
              progress.note(`${label} failed: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        }
      }
    } finally {
      await meter?.stop();
    }
  } finally {
    script.remove();
  }
  results.durationS = (Date.now() - startedAt.getTime()) / 1000;
  results.loadAverageEnd = loadAverage();
  progress.endLine();
  return results;
}

/** One path on a fresh server: a warm-up, then each concurrency in turn. */
async function measurePath(
  gen: Generation,
  path: LoginPath,
  round: number,
  tools: CaseTools,
  meter: LoginMeter,
  size: BenchSize,
  progress: Progress,
): Promise<LoginSample[]> {
  const starting = performance.now();
  const running = await startCase(gen, path, tools);
  progress.update(`server${running.componentPid ? ' and component' : ''} up in ${((performance.now() - starting) / 1000).toFixed(1)} s`, true);
  try {
    const base = { mechanism: path.mechanism, serverPid: running.serverPid, componentPid: running.componentPid, maxMs: size.maxMs };
    await meter.measure(running.target, { ...base, connections: 8, logins: size.warmupLogins, probe: false });
    const samples: LoginSample[] = [];
    for (const concurrency of CONCURRENCY) {
      const probe = concurrency === CONCURRENCY.at(-1);
      const f = await meter.measure(running.target, {
        ...base,
        connections: concurrency,
        logins: size.logins,
        probe,
        onProgress: (n) => progress.update(`c=${concurrency}: ${n} logins`),
      });
      samples.push({
        generation: gen.label,
        server: gen.kind as ServerKind,
        path,
        concurrency,
        round,
        rate: f.login.rate,
        p50Ms: f.login.p50Ms,
        p99Ms: f.login.p99Ms,
        logins: f.login.logins,
        ok: f.login.ok,
        failures: f.login.failures,
        serverCpu: f.serverCpu,
        componentCpu: f.componentCpu,
        ...(f.probe ? { probeP50Ms: f.probe.p50Ms, probeP99Ms: f.probe.p99Ms } : {}),
      });
      const failed = f.login.logins - f.login.ok;
      progress.update(
        `c=${concurrency}: ${Math.round(f.login.rate)} logins/s, p50 ${f.login.p50Ms.toFixed(1)} ms${failed ? `, ${failed} failed` : ''}${f.probe ? `, stream open p50 ${f.probe.p50Ms.toFixed(1)} ms` : ''}`,
        true,
      );
    }
    return samples;
  } finally {
    await running.stop();
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

// Ctrl-C: exit through process.exit so that every child (component, servers, generators) is killed.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
