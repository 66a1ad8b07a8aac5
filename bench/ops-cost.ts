// What operations cost on the request path: the same scenario through the component with no
// metrics and warn-level logs (the baseline), with HTTP_LISTEN (the Prometheus metrics), and with
// info-level logs (one line per answered query). Each in a component process of its own.
import { freePorts } from '../support/ports.js';
import type { BenchContext } from './component-bench.js';
import { componentEnv, runLimits } from './component-bench.js';
import { ComponentUnderLoad } from './component-load.js';
import { scenarioLabel, scriptDelayMs, type ScenarioSpec } from './scenarios.js';
import { medianOf } from './stats.js';

export const OPS_SCENARIO: ScenarioSpec = { script: 'instant', protocol: 'generic', pipelined: true, processes: 2 };

export interface OpsVariant {
  name: string;
  /** What differs from the baseline, as set in the environment. */
  setting: string;
  rate: number;
  cpuUsPerRequest: number;
  p99Ms: number;
  rates: number[];
}

export async function runOpsCost(ctx: BenchContext): Promise<OpsVariant[]> {
  const [port] = await freePorts(1);
  const variants: Array<{ name: string; setting: string; env: Record<string, string> }> = [
    { name: 'baseline', setting: 'LOG_LEVEL=warn', env: { LOG_LEVEL: 'warn' } },
    { name: 'metrics', setting: `LOG_LEVEL=warn HTTP_LISTEN=${port}`, env: { LOG_LEVEL: 'warn', HTTP_LISTEN: String(port) } },
    { name: 'query log lines', setting: 'LOG_LEVEL=info', env: { LOG_LEVEL: 'info' } },
  ];
  const results: OpsVariant[] = [];
  for (const variant of variants) {
    ctx.progress.scenarioStart(`ops cost: ${variant.name} (${scenarioLabel(OPS_SCENARIO)})`);
    const loaded = await ComponentUnderLoad.start({
      protocol: OPS_SCENARIO.protocol,
      script: ctx.script.command(OPS_SCENARIO.protocol, scriptDelayMs(OPS_SCENARIO)),
      env: { ...componentEnv(OPS_SCENARIO), ...variant.env },
    });
    try {
      const runs = [];
      for (let i = 0; i <= ctx.mode.runs; i++) {
        const limits = i === 0 ? runLimits(OPS_SCENARIO, ctx.mode, ctx.mode.warmupMs) : runLimits(OPS_SCENARIO, ctx.mode);
        const result = await loaded.measure({ limits });
        ctx.progress.update(`${i === 0 ? 'warm-up' : `run ${i}/${ctx.mode.runs}`}: ${Math.round(result.rate)}/s`, true);
        if (i > 0) runs.push(result);
      }
      results.push({
        name: variant.name,
        setting: variant.setting,
        rate: medianOf(runs, (r) => r.rate),
        cpuUsPerRequest: medianOf(runs, (r) => r.componentCpuUsPerRequest),
        p99Ms: medianOf(runs, (r) => r.p99Ms),
        rates: runs.map((r) => r.rate),
      });
    } finally {
      await loaded.stop();
    }
  }
  return results;
}
