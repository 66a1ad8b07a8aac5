// Logins against a real server, measured from two processes of their own that live for the whole
// bench: the login load (login-load.ts: N client connections logging in over and over) and an
// unrelated client opening streams meanwhile (stream-open-probe.ts), which shows whether the
// server stays responsive while it waits for a script.
import { BenchChild } from './child.js';
import type { LoginTarget } from './login-case.js';
import type { LoginMessage, LoginResult, LoginRun } from './login-load.js';
import { cpuMark, cpuShare, type CpuMark } from './proc-stats.js';
import type { ProbeCommand, ProbeMessage, ProbeResult } from './stream-open-probe.js';
import type { Mechanism } from '../support/xmpp-client.js';
import { USERS } from './cases.js';

export interface LoginMeasure {
  connections: number;
  logins: number;
  maxMs: number;
  mechanism: Mechanism;
  /** Open streams from another client meanwhile. */
  probe: boolean;
  serverPid: number | undefined;
  componentPid: number | undefined;
  onProgress?: (logins: number) => void;
}

export interface LoginFigures {
  login: LoginResult;
  probe: ProbeResult | undefined;
  /** CPU of the server and of the component during the run, fractions of one core (NaN: not measured). */
  serverCpu: number;
  componentCpu: number;
}

const PROBE_INTERVAL_MS = 20;

export class LoginMeter {
  private constructor(
    private readonly load: BenchChild<LoginRun, LoginMessage>,
    private readonly probe: BenchChild<ProbeCommand, ProbeMessage>,
  ) {}

  static async start(): Promise<LoginMeter> {
    const meter = new LoginMeter(
      BenchChild.start<LoginRun, LoginMessage>('login-load.ts', [], 'login load'),
      BenchChild.start<ProbeCommand, ProbeMessage>('stream-open-probe.ts', [], 'stream-open probe'),
    );
    await Promise.all([meter.load.ready(), meter.probe.ready()]);
    return meter;
  }

  async measure(target: LoginTarget, m: LoginMeasure): Promise<LoginFigures> {
    const before = marks(m);
    if (m.probe)
      this.probe.send({ type: 'run', ...target, maxDurationMs: m.maxMs + 10_000, intervalMs: PROBE_INTERVAL_MS, maxProbes: 100_000, warmupProbes: 0 });
    this.load.send({ type: 'run', ...target, connections: m.connections, logins: m.logins, maxDurationMs: m.maxMs, users: USERS, mechanism: m.mechanism });
    const { result: login } = await this.load.next('result', m.maxMs + 30_000, (message) => {
      if (message.type === 'progress') m.onProgress?.(message.logins);
    });
    const after = marks(m);
    let probe: ProbeResult | undefined;
    if (m.probe) {
      this.probe.send({ type: 'stop' });
      probe = (await this.probe.next('result', 20_000)).result;
    }
    return { login, probe, serverCpu: share(before.server, after.server), componentCpu: share(before.component, after.component) };
  }

  async stop(): Promise<void> {
    await Promise.all([this.load.stop(), this.probe.stop()]);
  }
}

function marks(m: LoginMeasure): { server: CpuMark | null; component: CpuMark | null } {
  const mark = (pid: number | undefined) => {
    try {
      return pid ? cpuMark(pid) : null;
    } catch {
      return null;
    }
  };
  return { server: mark(m.serverPid), component: mark(m.componentPid) };
}

function share(before: CpuMark | null, after: CpuMark | null): number {
  return before && after ? cpuShare(before, after) : Number.NaN;
}
