// Logins per second against a real server, with an unrelated client opening streams meanwhile:
// the login load (bench/login-load.ts) and the probe (bench/stream-open-probe.ts) each run in a
// process of their own, separate from the server and the component.
import { BenchChild } from './child.js';
import type { LoginMessage, LoginResult, LoginRun } from './login-load.js';
import type { BenchMode } from './mode.js';
import { cpuMark, cpuShare, type CpuMark } from './proc-stats.js';
import type { ProbeCommand, ProbeMessage, ProbeResult } from './stream-open-probe.js';
import type { Progress } from './progress.js';
import { medianOf } from './stats.js';

export interface LoginTarget {
  host: string;
  port: number;
  /** The VirtualHost. */
  domain: string;
}

export interface LoginRunResult {
  login: LoginResult;
  probe: ProbeResult;
  /** CPU of the server and of the component during the run, fractions of one core. */
  serverCpu: number;
  componentCpu: number;
}

export interface LoginSummary {
  rate: number;
  p50Ms: number;
  p99Ms: number;
  probeP50Ms: number;
  probeP99Ms: number;
  /** The probe before any load. */
  idleProbeP50Ms: number;
  idleProbeP99Ms: number;
  serverCpu: number;
  componentCpu: number;
  generatorCpu: number;
  /** Failed logins over all runs, by condition. */
  failures: Record<string, number>;
}

export interface LoginBenchResult {
  label: string;
  runs: LoginRunResult[];
  summary: LoginSummary;
}

export interface LoginBenchOptions {
  label: string;
  target: LoginTarget;
  mode: BenchMode;
  progress: Progress;
  serverPid?: number | undefined;
  componentPid?: number | undefined;
}

const USERS = 64;
const PROBE_INTERVAL_MS = 10;
const IDLE_PROBE_MS = 1000;
/** Safety bound on one login run (they are bounded by count). */
const MAX_RUN_MS = 60_000;
/** Stream opens before the idle measurement, not counted: a fresh server answers its first ones slowly. */
const IDLE_WARMUP_PROBES = 10;

export async function measureLogins(o: LoginBenchOptions): Promise<LoginBenchResult> {
  const { mode, progress, target } = o;
  progress.scenarioStart(o.label);
  const load = BenchChild.start<LoginRun, LoginMessage>('login-load.ts', [], 'login load');
  const probe = BenchChild.start<ProbeCommand, ProbeMessage>('stream-open-probe.ts', [], 'stream-open probe');
  try {
    await Promise.all([load.ready(), probe.ready()]); // loading them costs CPU: not while probing
    progress.update('stream opens while idle', true);
    probe.send({ type: 'run', ...target, maxDurationMs: IDLE_PROBE_MS, intervalMs: PROBE_INTERVAL_MS, maxProbes: 10_000, warmupProbes: IDLE_WARMUP_PROBES });
    const { result: idle } = await probe.next('result', IDLE_PROBE_MS + 20_000);
    const runs: LoginRunResult[] = [];
    for (let i = 0; i <= mode.runs; i++) {
      const name = i === 0 ? 'warm-up' : `run ${i}/${mode.runs}`;
      const logins = i === 0 ? mode.warmupLogins : mode.loginsPerRun;
      const before = marks(o);
      probe.send({ type: 'run', ...target, maxDurationMs: MAX_RUN_MS, intervalMs: PROBE_INTERVAL_MS, maxProbes: 100_000, warmupProbes: 0 });
      load.send({ type: 'run', ...target, connections: mode.loginConnections, logins, maxDurationMs: MAX_RUN_MS, users: USERS });
      const { result: login } = await load.next('result', MAX_RUN_MS + 30_000, (m) => {
        if (m.type === 'progress') progress.update(`${name}: ${m.logins}/${logins} logins`);
      });
      const after = marks(o);
      probe.send({ type: 'stop' });
      const { result: probeResult } = await probe.next('result', 20_000);
      progress.update(`${name}: ${Math.round(login.rate)} logins/s, stream open p99 ${probeResult.p99Ms.toFixed(1)} ms`, true);
      if (i > 0)
        runs.push({ login, probe: probeResult, serverCpu: share(before.server, after.server), componentCpu: share(before.component, after.component) });
    }
    const failures: Record<string, number> = {};
    for (const run of runs) for (const [condition, n] of Object.entries(run.login.failures)) failures[condition] = (failures[condition] ?? 0) + n;
    return {
      label: o.label,
      runs,
      summary: {
        rate: medianOf(runs, (r) => r.login.rate),
        p50Ms: medianOf(runs, (r) => r.login.p50Ms),
        p99Ms: medianOf(runs, (r) => r.login.p99Ms),
        probeP50Ms: medianOf(runs, (r) => r.probe.p50Ms),
        probeP99Ms: medianOf(runs, (r) => r.probe.p99Ms),
        idleProbeP50Ms: idle.p50Ms,
        idleProbeP99Ms: idle.p99Ms,
        serverCpu: medianOf(runs, (r) => r.serverCpu),
        componentCpu: medianOf(runs, (r) => r.componentCpu),
        generatorCpu: medianOf(runs, (r) => r.login.generatorCpu),
        failures,
      },
    };
  } finally {
    await Promise.all([load.stop(), probe.stop()]);
  }
}

function marks(o: LoginBenchOptions): { server: CpuMark | null; component: CpuMark | null } {
  return { server: o.serverPid ? cpuMark(o.serverPid) : null, component: o.componentPid ? cpuMark(o.componentPid) : null };
}

function share(before: CpuMark | null, after: CpuMark | null): number {
  return before && after ? cpuShare(before, after) : Number.NaN;
}
