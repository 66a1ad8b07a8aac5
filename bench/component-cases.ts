// The component on its own, against the fake XEP-0114 server (xep0114-load.ts): what one request
// costs it. Its IQ round trip one at a time (the hop a login through it adds), its CPU per
// request at a steady load, and a login's wait behind one hostile stanza; the last two also on
// the component with its old hand-written stream parser (parser-baseline.ts), as the baseline.
import type { BenchScript } from './bench-script.js';
import type { BenchSize } from './cases.js';
import { BENCH_DOMAIN, ComponentUnderLoad } from './component-load.js';
import type { Progress } from './progress.js';
import { median } from './stats.js';
import { type HostileStanza, hostileStanza } from './hostile-input.js';
import { buildBaseline, PARSER_BASELINE_LABEL } from './parser-baseline.js';

type SteadyRun = { rate: number; cpuUsPerRequest: number; cpu: number };
type HostileRow = { label: string; bytes: number; aloneMs: number[]; behindMs: number[]; failures: number };

export interface ComponentFigures {
  /** Instant script, 1 process, lockstep, one request at a time: p50/p99 of the IQ round trip, per run. */
  roundTrip: Array<{ p50Ms: number; p99Ms: number; rate: number }>;
  /** Instant script, 2 processes pipelined, 256 in flight: IQs/s and component CPU µs per IQ, per run. */
  steady: SteadyRun[];
  /** Milliseconds for one login's answer: alone, and behind each hostile stanza. */
  hostile: HostileRow[];
  /** The same steady load and hostile stanzas on the component before saxes, in the same run. */
  baseline: { label: string; source: string; steady: SteadyRun[]; hostile: HostileRow[] } | { skipped: string };
}

/** The stanzas that made the old parser quadratic, each under the component's 1 MiB cap. */
export const HOSTILE_STANZAS: Array<HostileStanza & { label: string }> = [
  { shape: 'attributes', count: 60_000, label: '60,000 attributes' },
  { shape: 'namespaces', count: 60_000, label: '60,000 namespace declarations' },
];
const SLOW_HOSTILE_MS = 2000;

/** A build of the component: this checkout's (`main` unset) or the parser baseline's. */
interface Build {
  readonly name: string;
  readonly main?: string;
}

export async function measureComponent(script: BenchScript, size: BenchSize, progress: Progress): Promise<ComponentFigures> {
  const roundTrip: ComponentFigures['roundTrip'] = [];
  progress.scenarioStart('component: IQ round trip, one at a time (instant script, lockstep ×1)');
  await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '1', EXTERNAL_AUTH_BLOCKING: 'true' }, {}, async (loaded) => {
    await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: 300, window: 1 } }); // warm-up
    for (let i = 0; i < size.componentRuns; i++) {
      const r = await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: size.componentRunMs, window: 1 } });
      roundTrip.push({ p50Ms: r.p50Ms, p99Ms: r.p99Ms, rate: r.rate });
      progress.update(`p50 ${r.p50Ms.toFixed(3)} ms`, true);
    }
  });
  const current: Build = { name: 'this tree' };
  progress.note('building the component before saxes from git history');
  const built = buildBaseline();
  const baseline: Build | undefined = 'missing' in built ? undefined : { name: 'hand-written parser', main: built.main };
  if ('missing' in built) progress.note(`the parser baseline is not measured: ${built.missing}`);
  // Each case on the two builds one after the other, so that drift on the machine falls on both.
  const steady = await measureSteady(script, size, progress, current);
  const baselineSteady = baseline ? await measureSteady(script, size, progress, baseline) : [];
  const hostile: HostileRow[] = [];
  const baselineHostile: HostileRow[] = [];
  for (const stanza of HOSTILE_STANZAS) {
    hostile.push(await measureHostile(script, size, progress, stanza, current));
    if (baseline) baselineHostile.push(await measureHostile(script, size, progress, stanza, baseline));
  }
  return {
    roundTrip,
    steady,
    hostile,
    baseline:
      'missing' in built
        ? { skipped: built.missing }
        : { label: PARSER_BASELINE_LABEL, source: built.source, steady: baselineSteady, hostile: baselineHostile },
  };
}

async function measureSteady(script: BenchScript, size: BenchSize, progress: Progress, build: Build): Promise<SteadyRun[]> {
  const steady: SteadyRun[] = [];
  progress.scenarioStart(`component (${build.name}): steady load (instant script, pipelined ×2, 256 in flight)`);
  await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'false' }, build, async (loaded) => {
    await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: 500, window: 256 } });
    for (let i = 0; i < size.componentRuns; i++) {
      const r = await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: size.componentRunMs, window: 256 } });
      steady.push({ rate: r.rate, cpuUsPerRequest: r.componentCpuUsPerRequest, cpu: r.componentCpu });
      progress.update(`${Math.round(r.rate)}/s, ${r.componentCpuUsPerRequest.toFixed(1)} µs/IQ`, true);
    }
  });
  return steady;
}

async function measureHostile(
  script: BenchScript,
  size: BenchSize,
  progress: Progress,
  stanza: HostileStanza & { label: string },
  build: Build,
): Promise<HostileRow> {
  progress.scenarioStart(`component (${build.name}): a login behind one stanza of ${stanza.label}`);
  const row: HostileRow = { label: stanza.label, bytes: Buffer.byteLength(hostileStanza(stanza, BENCH_DOMAIN)), aloneMs: [], behindMs: [], failures: 0 };
  // A fresh component each time: a stanza still being parsed must not delay the next case.
  await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'true' }, build, async (loaded) => {
    const one = { maxRequests: 1, durationMs: 60_000, window: 1 };
    for (let i = 0; i < size.hostileLogins; i++) {
      const alone = await loaded.measure({ limits: one });
      const behind = await loaded.measure({ limits: one, hostile: stanza });
      row.failures += alone.errors + alone.lost + behind.errors + behind.lost;
      row.aloneMs.push(alone.p50Ms);
      row.behindMs.push(behind.p50Ms);
      progress.update(`alone ${alone.p50Ms.toFixed(1)} ms, behind it ${behind.p50Ms.toFixed(1)} ms`, true);
      // A parser that takes seconds per such stanza has made its point once; the run must stay short.
      if (behind.p50Ms > SLOW_HOSTILE_MS) break;
    }
  });
  return row;
}

async function withComponent(
  script: BenchScript,
  env: Record<string, string>,
  build: Pick<Build, 'main'>,
  use: (loaded: ComponentUnderLoad) => Promise<void>,
): Promise<void> {
  const loaded = await ComponentUnderLoad.start({
    protocol: 'generic',
    script: script.command('generic', 0),
    env: { LOG_LEVEL: 'warn', ...env },
    ...(build.main ? { main: build.main } : {}),
  });
  try {
    await use(loaded);
  } finally {
    await loaded.stop();
  }
}

export const medianRoundTripMs = (f: ComponentFigures): number => median(f.roundTrip.map((r) => r.p50Ms));
