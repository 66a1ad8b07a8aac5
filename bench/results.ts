// Everything one `npm run bench` measured, as the report and the target checks read it.
import type { ScenarioResult } from './component-bench.js';
import type { EjabberdComparison } from './ejabberd-bench.js';
import type { InFlightResult, LongRunResult } from './long-run.js';
import type { MachineInfo } from './machine.js';
import type { OpsVariant } from './ops-cost.js';
import type { BenchMode } from './mode.js';
import type { MemoryBreakdown, ScenarioProfile } from './profile.js';
import type { ProsodyBenchResult } from './prosody-bench.js';

/** A suite's result, or why it did not run. */
export type SuiteOutcome<T> = { ok: T } | { skipped: string };

export interface BenchResults {
  mode: BenchMode;
  machine: MachineInfo;
  startedAt: Date;
  durationS: number;
  /** /proc/loadavg at the end: much above the bench's own load means something else ran too. */
  loadAverageEnd: string;
  /** dist/ changed while the run went on: its figures mix two builds. */
  rebuiltDuringRun: boolean;
  /** The command line this run was started with. */
  command: string;
  scenarios: ScenarioResult[];
  prosody: SuiteOutcome<ProsodyBenchResult>;
  ejabberd: SuiteOutcome<EjabberdComparison[]>;
  longRun: SuiteOutcome<LongRunResult>;
  inFlight: SuiteOutcome<InFlightResult>;
  /** The request path's cost of metrics (HTTP_LISTEN) and of info-level query log lines. */
  ops: SuiteOutcome<OpsVariant[]>;
  profiles: ScenarioProfile[];
  memoryBreakdown: MemoryBreakdown | null;
}

export function value<T>(outcome: SuiteOutcome<T> | undefined): T | undefined {
  return outcome && 'ok' in outcome ? outcome.ok : undefined;
}
