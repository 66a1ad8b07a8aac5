// One component scenario, measured through the component and as the bare script over a pipe
// (the baseline), each as the median of repeated runs.
import type { BenchScript } from './bench-script.js';
import { BenchChild } from './child.js';
import type { BarePipeCommand, BarePipeMessage, BarePipeResult } from './bare-pipe.js';
import { ComponentUnderLoad } from './component-load.js';
import type { RunLimits } from './load-run.js';
import type { BenchMode } from './mode.js';
import type { Progress } from './progress.js';
import { depthOf, scenarioLabel, scriptDelayMs, windowOf, type ScenarioSpec } from './scenarios.js';
import { medianOf } from './stats.js';
import type { GeneratorResult } from './xep0114-load.js';

/** Upper bound on requests in one timed run (the time limit ends runs long before). */
const MAX_REQUESTS_PER_RUN = 1_000_000;

export interface ScenarioSummary {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** Component CPU, fraction of one core. */
  cpu: number;
  cpuUsPerRequest: number;
  peakRssMiB: number;
  generatorCpu: number;
  /** Error replies and unanswered requests over all runs. */
  failures: number;
  bareRate: number;
  bareP50Ms: number;
  bareP99Ms: number;
  /** Component rate / bare script rate. */
  ratio: number;
}

export interface ScenarioResult {
  spec: ScenarioSpec;
  component: GeneratorResult[];
  bare: BarePipeResult[];
  summary: ScenarioSummary;
}

export interface BenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

export function componentEnv(spec: ScenarioSpec): Record<string, string> {
  return {
    EXTERNAL_AUTH_PROCESSES: String(spec.processes),
    EXTERNAL_AUTH_BLOCKING: String(!spec.pipelined),
  };
}

export function runLimits(spec: ScenarioSpec, mode: BenchMode, durationMs = spec.script === 'instant' ? mode.instantRunMs : mode.slowRunMs): RunLimits {
  return { maxRequests: MAX_REQUESTS_PER_RUN, durationMs, window: windowOf(spec) };
}

export async function runScenario(spec: ScenarioSpec, ctx: BenchContext): Promise<ScenarioResult> {
  const label = scenarioLabel(spec);
  const component = await measureThroughComponent(spec, ctx, label);
  const bare = await measureBarePipe(spec, ctx, label);
  const rate = medianOf(component, (r) => r.rate);
  const bareRate = medianOf(bare, (r) => r.rate);
  return {
    spec,
    component,
    bare,
    summary: {
      rate,
      p50Ms: medianOf(component, (r) => r.p50Ms),
      p99Ms: medianOf(component, (r) => r.p99Ms),
      cpu: medianOf(component, (r) => r.componentCpu),
      cpuUsPerRequest: medianOf(component, (r) => r.componentCpuUsPerRequest),
      peakRssMiB: Math.max(...component.map((r) => r.componentPeakRss)) / 2 ** 20,
      generatorCpu: medianOf(component, (r) => r.generatorCpu),
      failures: component.reduce((sum, r) => sum + r.errors + r.lost, 0),
      bareRate,
      bareP50Ms: medianOf(bare, (r) => r.p50Ms),
      bareP99Ms: medianOf(bare, (r) => r.p99Ms),
      ratio: rate / bareRate,
    },
  };
}

async function measureThroughComponent(spec: ScenarioSpec, ctx: BenchContext, label: string): Promise<GeneratorResult[]> {
  const { mode, progress } = ctx;
  progress.scenarioStart(`component: ${label}`);
  const loaded = await ComponentUnderLoad.start({
    protocol: spec.protocol,
    script: ctx.script.command(spec.protocol, scriptDelayMs(spec)),
    env: componentEnv(spec),
  });
  try {
    const results: GeneratorResult[] = [];
    for (let i = 0; i <= mode.runs; i++) {
      const name = i === 0 ? 'warm-up' : `run ${i}/${mode.runs}`;
      const limits = i === 0 ? runLimits(spec, mode, mode.warmupMs) : runLimits(spec, mode);
      const result = await loaded.measure({ limits, onProgress: (_sent, done) => progress.update(`${name}: ${done} answered`) });
      progress.update(`${name}: ${Math.round(result.rate)}/s`, true);
      if (i > 0) results.push(result);
    }
    return results;
  } finally {
    await loaded.stop();
  }
}

async function measureBarePipe(spec: ScenarioSpec, ctx: BenchContext, label: string): Promise<BarePipeResult[]> {
  const { mode, progress } = ctx;
  progress.scenarioStart(`bare pipe: ${label}`);
  const driver = BenchChild.start<BarePipeCommand, BarePipeMessage>('bare-pipe.ts', [], 'bare-pipe driver');
  try {
    await driver.ready();
    const script = ctx.script.command(spec.protocol, scriptDelayMs(spec));
    driver.send({ type: 'start', file: script.file, args: script.args, protocol: spec.protocol, processes: spec.processes });
    await driver.next('started', 10_000);
    const results: BarePipeResult[] = [];
    for (let i = 0; i <= mode.runs; i++) {
      const name = i === 0 ? 'warm-up' : `run ${i}/${mode.runs}`;
      const limits = i === 0 ? runLimits(spec, mode, mode.warmupMs) : runLimits(spec, mode);
      driver.send({ type: 'run', limits, depth: depthOf(spec), progressEveryMs: 250, drainTimeoutMs: 30_000 });
      const { result } = await driver.next('result', limits.durationMs + 40_000, (message) => {
        if (message.type === 'progress') progress.update(`${name}: ${message.completed} answered`);
      });
      progress.update(`${name}: ${Math.round(result.rate)}/s`, true);
      if (i > 0) results.push(result);
    }
    return results;
  } finally {
    await driver.stop();
  }
}
