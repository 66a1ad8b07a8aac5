// Quick and full mode: how much is measured and how often.
import { allScenarios, quickScenarios, type ScenarioSpec } from './scenarios.js';

export interface BenchMode {
  name: 'quick' | 'full';
  /** Measured runs per figure (the median is reported). */
  runs: number;
  /** Length of one run with the instant script, and with the 20 ms script. */
  instantRunMs: number;
  slowRunMs: number;
  /** An unreported run before the measured ones (JIT, buffers, process start). */
  warmupMs: number;
  scenarios: ScenarioSpec[];
  /**
   * Login benchmarks: logins per run (bounded by count, so that every server serves the same
   * number of connections), in the warm-up run, and concurrent client connections.
   */
  loginsPerRun: number;
  warmupLogins: number;
  loginConnections: number;
  /** ejabberd: also compare with the instant script (not only the 20 ms one). */
  ejabberdInstant: boolean;
  /** The long run: requests pipelined through one component. */
  longRunRequests: number;
  /** Requests in the run with 10 000 in flight. */
  inFlightRequests: number;
}

export const QUICK: BenchMode = {
  name: 'quick',
  runs: 3,
  instantRunMs: 1000,
  slowRunMs: 1500,
  warmupMs: 500,
  scenarios: quickScenarios(),
  loginsPerRun: 1000,
  warmupLogins: 200,
  loginConnections: 32,
  ejabberdInstant: false,
  longRunRequests: 200_000,
  inFlightRequests: 50_000,
};

export const FULL: BenchMode = {
  name: 'full',
  runs: 5,
  instantRunMs: 1000,
  slowRunMs: 1000,
  warmupMs: 500,
  scenarios: allScenarios(),
  loginsPerRun: 1500,
  warmupLogins: 200,
  loginConnections: 32,
  ejabberdInstant: true,
  longRunRequests: 1_000_000,
  inFlightRequests: 100_000,
};

/** Logins one at a time (one client connection, fewer logins per run): where extra hops show as latency. */
export function oneAtATime(mode: BenchMode): BenchMode {
  return { ...mode, loginConnections: 1, loginsPerRun: Math.min(mode.loginsPerRun, 500), warmupLogins: Math.min(mode.warmupLogins, 100) };
}
