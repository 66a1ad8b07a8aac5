// The component scenarios: protocol × script × processes × lockstep/pipelined, and the load
// each one gets.
import type { Protocol } from './bench-script.js';

export type ScriptSpeed = 'instant' | '20ms';

export interface ScenarioSpec {
  protocol: Protocol;
  script: ScriptSpeed;
  processes: number;
  /** EXTERNAL_AUTH_BLOCKING=false. */
  pipelined: boolean;
}

/** Requests one process may hold when pipelining (the component's PIPELINE_DEPTH, see the README). */
export const PIPELINE_DEPTH = 256;
/** Requests outstanding from the generator in a pipelined scenario with the instant script. */
export const PIPELINED_WINDOW = 256;
/**
 * Otherwise (lockstep; and the 20 ms script, which answers one request at a time whatever the
 * mode) the generator keeps this many requests per process outstanding; the rest queue.
 */
export const WINDOW_PER_PROCESS = 4;

export function scriptDelayMs(spec: ScenarioSpec): number {
  return spec.script === 'instant' ? 0 : 20;
}

export function windowOf(spec: ScenarioSpec): number {
  return spec.pipelined && spec.script === 'instant' ? PIPELINED_WINDOW : WINDOW_PER_PROCESS * spec.processes;
}

/** Requests one script process may hold at once. */
export function depthOf(spec: ScenarioSpec): number {
  return spec.pipelined ? PIPELINE_DEPTH : 1;
}

export function scenarioLabel(spec: ScenarioSpec): string {
  return `${spec.script} ${spec.protocol} ${spec.pipelined ? 'pipelined' : 'lockstep'} ×${spec.processes}`;
}

/** Every combination, in table order. */
export function allScenarios(): ScenarioSpec[] {
  const specs: ScenarioSpec[] = [];
  for (const script of ['instant', '20ms'] as const)
    for (const protocol of ['generic', 'ejabberd'] as const)
      for (const pipelined of [true, false]) for (const processes of [1, 2, 4, 8]) specs.push({ protocol, script, processes, pipelined });
  return specs;
}

/** The quick mode's subset: the two targets' scenarios and one of each other dimension. */
export function quickScenarios(): ScenarioSpec[] {
  return [
    { script: 'instant', protocol: 'generic', pipelined: true, processes: 2 },
    { script: 'instant', protocol: 'ejabberd', pipelined: true, processes: 2 },
    { script: 'instant', protocol: 'generic', pipelined: false, processes: 2 },
    { script: '20ms', protocol: 'generic', pipelined: false, processes: 8 },
  ];
}

export function sameScenario(a: ScenarioSpec, b: ScenarioSpec): boolean {
  return a.protocol === b.protocol && a.script === b.script && a.processes === b.processes && a.pipelined === b.pipelined;
}
