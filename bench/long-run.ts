// Memory under sustained load: a long pipelined run with the component's RSS sampled every
// second (does it stay flat?), and a run with 10 000 requests in flight at once (does the
// peak stay under 100 MB?).
import type { BenchScript } from './bench-script.js';
import { ComponentUnderLoad } from './component-load.js';
import type { RunLimits } from './load-run.js';
import type { BenchMode } from './mode.js';
import type { Progress } from './progress.js';
import { memoryStatus } from './proc-stats.js';
import { median } from './stats.js';

const MiB = 2 ** 20;
const PROCESSES = 2;
const LONG_RUN_WINDOW = 256;
const LONG_RUN_MAX_MS = 300_000;
/** Load before the long run, so that its first RSS sample is already past start-up growth. */
const LONG_RUN_WARMUP_MS = 2000;
export const IN_FLIGHT_WINDOW = 10_000;
const IN_FLIGHT_QUEUE = 20_000;
const IN_FLIGHT_MAX_MS = 120_000;
/** RSS may wander by this much (GC, allocator) and still count as flat. */
export const FLAT_TOLERANCE_MiB = 10;
/** The limit for 10 000 in flight: 100 MB (10^8 bytes), in MiB. */
export const IN_FLIGHT_LIMIT_MiB = 1e8 / 2 ** 20;

export interface LongRunResult {
  requests: number;
  rate: number;
  failures: number;
  /** RSS at the start and the end (medians of three samples when there are six or more), and the highest. */
  rssStartMiB: number;
  rssEndMiB: number;
  rssPeakMiB: number;
  samplesMiB: number[];
  flat: boolean;
  env: Record<string, string>;
}

export interface InFlightResult {
  /** The component's RSS after start-up, before any load. */
  idleRssMiB: number;
  window: number;
  requests: number;
  rate: number;
  failures: number;
  p99Ms: number;
  peakRssMiB: number;
  underLimit: boolean;
  env: Record<string, string>;
}

export interface MemoryBenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

export const LONG_RUN_ENV = { EXTERNAL_AUTH_PROCESSES: String(PROCESSES), EXTERNAL_AUTH_BLOCKING: 'false' };
export const IN_FLIGHT_ENV = { ...LONG_RUN_ENV, EXTERNAL_AUTH_QUEUE: String(IN_FLIGHT_QUEUE) };

export async function runLongRun(ctx: MemoryBenchContext): Promise<LongRunResult> {
  const total = ctx.mode.longRunRequests;
  ctx.progress.scenarioStart(`long run: ${total} requests pipelined, instant generic ×${PROCESSES}`);
  const loaded = await ComponentUnderLoad.start({ protocol: 'generic', script: ctx.script.command('generic', 0), env: LONG_RUN_ENV });
  try {
    ctx.progress.update('warm-up');
    await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: LONG_RUN_WARMUP_MS, window: LONG_RUN_WINDOW } });
    const result = await loaded.measure({
      limits: { maxRequests: total, durationMs: LONG_RUN_MAX_MS, window: LONG_RUN_WINDOW },
      rssEveryMs: 1000,
      onProgress: (_sent, done) => ctx.progress.update(`${done}/${total} answered (${Math.round((done * 100) / total)} %)`),
    });
    const samples = result.rssSamples.map((bytes) => bytes / MiB);
    // With enough samples, the median of the first and of the last three smooths out GC noise.
    const edge = samples.length >= 6 ? 3 : 1;
    const rssStartMiB = median(samples.slice(0, edge));
    const rssEndMiB = median(samples.slice(-edge));
    return {
      requests: result.completed,
      rate: result.rate,
      failures: result.errors + result.lost + (total - result.sent),
      rssStartMiB,
      rssEndMiB,
      rssPeakMiB: Math.max(...samples),
      samplesMiB: samples,
      flat: rssEndMiB - rssStartMiB <= FLAT_TOLERANCE_MiB,
      env: LONG_RUN_ENV,
    };
  } finally {
    await loaded.stop();
  }
}

export function inFlightLimits(mode: BenchMode): RunLimits {
  return { maxRequests: mode.inFlightRequests, durationMs: IN_FLIGHT_MAX_MS, window: IN_FLIGHT_WINDOW };
}

export async function runInFlight(ctx: MemoryBenchContext): Promise<InFlightResult> {
  const total = ctx.mode.inFlightRequests;
  ctx.progress.scenarioStart(`${IN_FLIGHT_WINDOW} in flight: ${total} requests, instant generic pipelined ×${PROCESSES}`);
  const loaded = await ComponentUnderLoad.start({ protocol: 'generic', script: ctx.script.command('generic', 0), env: IN_FLIGHT_ENV });
  try {
    const idleRssMiB = memoryStatus(loaded.pid).rss / MiB;
    const result = await loaded.measure({
      limits: inFlightLimits(ctx.mode),
      rssEveryMs: 250,
      onProgress: (_sent, done) => ctx.progress.update(`${done}/${total} answered`),
    });
    // The kernel's peak since the run began (VmHWM), or the highest sample if it cannot say.
    const peak = Number.isFinite(result.componentPeakRss) ? result.componentPeakRss : Math.max(...result.rssSamples);
    return {
      idleRssMiB,
      window: IN_FLIGHT_WINDOW,
      requests: result.completed,
      rate: result.rate,
      failures: result.errors + result.lost + (total - result.sent),
      p99Ms: result.p99Ms,
      peakRssMiB: peak / MiB,
      underLimit: peak / MiB < IN_FLIGHT_LIMIT_MiB,
      env: IN_FLIGHT_ENV,
    };
  } finally {
    await loaded.stop();
  }
}
