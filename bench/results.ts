// Everything one bench run measured, as it is saved (bench-results/*.json) and as the report,
// the charts and the README summary read it; and the figures derived from it (medians over
// rounds, spreads, ratios), computed in one place.
import type { BenchSize, LoginPath, PathKind, ServerKind } from './cases.js';
import type { ComponentFigures } from './component-cases.js';
import type { MachineInfo } from './machine.js';
import { median } from './stats.js';

export interface LoginSample {
  generation: string;
  server: ServerKind;
  path: LoginPath;
  concurrency: number;
  round: number;
  /** Successful logins per second. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  logins: number;
  ok: number;
  /** Failed logins by condition (every login is a valid one: each is a refusal of a valid login). */
  failures: Record<string, number>;
  serverCpu: number;
  componentCpu: number;
  /** Stream opens of another client meanwhile (c = 32 only). */
  probeP50Ms?: number;
  probeP99Ms?: number;
}

export interface BenchResults {
  mode: string;
  /** How much was measured. */
  size: BenchSize;
  command: string;
  startedAt: string;
  durationS: number;
  machine: MachineInfo;
  loadAverageEnd: string;
  /** Server generations measured, e.g. `Prosody 13.0.1`. */
  generations: Array<{ label: string; server: ServerKind }>;
  /** Paths that did not run, and why. */
  skipped: Array<{ generation: string; path: string; reason: string }>;
  /** Where the in-process module came from, or why it is missing. */
  inProcessModule: string;
  samples: LoginSample[];
  component: ComponentFigures | { skipped: string };
  /** Milliseconds for one bcrypt verification at cost 10 (the backends' library), or why not measured. */
  bcrypt: { costMs: number[] } | { skipped: string };
}

export interface Cell {
  rate: number;
  rateMin: number;
  rateMax: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  logins: number;
  serverCpu: number;
  componentCpu: number;
  probeP50Ms: number;
  probeP99Ms: number;
  rounds: number;
}

export function samePath(a: LoginPath, b: LoginPath): boolean {
  return a.kind === b.kind && a.script === b.script && a.mechanism === b.mechanism;
}

/** The rounds of one (generation, path, concurrency), summarised; undefined when never measured. */
export function cell(results: BenchResults, generation: string, path: LoginPath, concurrency: number): Cell | undefined {
  const runs = results.samples.filter((s) => s.generation === generation && s.concurrency === concurrency && samePath(s.path, path));
  if (runs.length === 0) return undefined;
  const mid = (pick: (s: LoginSample) => number | undefined) => median(runs.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const rates = runs.map((s) => s.rate);
  return {
    rate: mid((s) => s.rate),
    rateMin: Math.min(...rates),
    rateMax: Math.max(...rates),
    p50Ms: mid((s) => s.p50Ms),
    p99Ms: mid((s) => s.p99Ms),
    failed: runs.reduce((sum, s) => sum + (s.logins - s.ok), 0),
    logins: runs.reduce((sum, s) => sum + s.logins, 0),
    serverCpu: mid((s) => s.serverCpu),
    componentCpu: mid((s) => s.componentCpu),
    probeP50Ms: mid((s) => s.probeP50Ms),
    probeP99Ms: mid((s) => s.probeP99Ms),
    rounds: runs.length,
  };
}

/** The server's own ceiling on this generation: its internal store. */
export const CEILING: LoginPath = { kind: 'internal', mechanism: 'PLAIN' };

/** What the component is compared with on this server, with the same script: the in-process module or native extauth. */
export function baselineOf(server: ServerKind, path: LoginPath): LoginPath | undefined {
  if (!path.script) return undefined;
  const kind: PathKind = server === 'prosody' ? 'in-process' : 'native';
  return { kind, script: path.script, mechanism: 'PLAIN' };
}

/** Every failure condition over the rounds of a path, all concurrencies. */
export function failuresOf(results: BenchResults, generation: string, path: LoginPath): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of results.samples)
    if (s.generation === generation && samePath(s.path, path)) for (const [k, n] of Object.entries(s.failures)) out[k] = (out[k] ?? 0) + n;
  return out;
}
