// Looks inside the component under load when a target is missed: the V8 CPU profiler during one
// measured run (bench/cpu-profile-hook.mjs), summarised; and peaks of process.memoryUsage() with
// 10 000 requests in flight (bench/memory-usage-hook.mjs).
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { sleep } from '../support/wait.js';
import { BENCH_DIR } from './child.js';
import { componentEnv, runLimits, type BenchContext } from './component-bench.js';
import { ComponentUnderLoad } from './component-load.js';
import { IN_FLIGHT_ENV, IN_FLIGHT_WINDOW, inFlightLimits } from './long-run.js';
import { summariseProfile, type CpuProfile, type ProfileSummary } from './profile-summary.js';
import { scenarioLabel, scriptDelayMs, type ScenarioSpec } from './scenarios.js';
import type { GeneratorResult } from './xep0114-load.js';

export interface ScenarioProfile {
  spec: ScenarioSpec;
  file: string;
  /** The profiled run (the profiler slows the component a little). */
  run: GeneratorResult;
  summary: ProfileSummary;
}

const CPU_HOOK = resolve(BENCH_DIR, 'cpu-profile-hook.mjs');
const MEMORY_HOOK = resolve(BENCH_DIR, 'memory-usage-hook.mjs');

/** Peaks of process.memoryUsage() in the component during a run, in MiB. */
export interface MemoryBreakdown {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

export async function profileScenario(spec: ScenarioSpec, ctx: BenchContext, dir: string): Promise<ScenarioProfile> {
  mkdirSync(dir, { recursive: true });
  const label = scenarioLabel(spec);
  const file = join(dir, `${label.replace(/[^\w]+/g, '-')}.cpuprofile`);
  ctx.progress.scenarioStart(`profiling the component: ${label}`);
  const loaded = await ComponentUnderLoad.start({
    protocol: spec.protocol,
    script: ctx.script.command(spec.protocol, scriptDelayMs(spec)),
    env: { ...componentEnv(spec), NODE_OPTIONS: `--import=${pathToFileURL(CPU_HOOK).href}`, BENCH_CPU_PROFILE: file },
  });
  try {
    await loaded.measure({ limits: runLimits(spec, ctx.mode, ctx.mode.warmupMs) });
    loaded.component.child.kill('SIGUSR2'); // start profiling
    const run = await loaded.measure({
      limits: runLimits(spec, ctx.mode, 2 * ctx.mode.instantRunMs),
      onProgress: (_s, done) => ctx.progress.update(`${done} answered`),
    });
    loaded.component.child.kill('SIGUSR2'); // stop and write
    await waitForFile(file);
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    return { spec, file, run, summary: summariseProfile(profile, 25) };
  } finally {
    await loaded.stop();
  }
}

/** Where the component's memory goes with 10 000 requests in flight: JS heap or buffers. */
export async function memoryBreakdownInFlight(ctx: BenchContext, dir: string): Promise<MemoryBreakdown> {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'in-flight-memory.json');
  ctx.progress.scenarioStart(`memory breakdown: ${IN_FLIGHT_WINDOW} in flight`);
  const loaded = await ComponentUnderLoad.start({
    protocol: 'generic',
    script: ctx.script.command('generic', 0),
    env: { ...IN_FLIGHT_ENV, NODE_OPTIONS: `--import=${pathToFileURL(MEMORY_HOOK).href}`, BENCH_MEMORY_USAGE: file },
  });
  try {
    await loaded.measure({ limits: inFlightLimits(ctx.mode), onProgress: (_s, done) => ctx.progress.update(`${done} answered`) });
    loaded.component.child.kill('SIGUSR2');
    await waitForFile(file);
    const peaks = JSON.parse(readFileSync(file, 'utf8')) as Record<keyof MemoryBreakdown, number>;
    const mib = (bytes: number) => bytes / 2 ** 20;
    return {
      rss: mib(peaks.rss),
      heapTotal: mib(peaks.heapTotal),
      heapUsed: mib(peaks.heapUsed),
      external: mib(peaks.external),
      arrayBuffers: mib(peaks.arrayBuffers),
    };
  } finally {
    await loaded.stop();
  }
}

async function waitForFile(file: string): Promise<void> {
  for (let waited = 0; !existsSync(file) && waited < 10_000; waited += 100) await sleep(100);
  if (!existsSync(file)) throw new Error(`the component wrote nothing to ${file}`);
}
