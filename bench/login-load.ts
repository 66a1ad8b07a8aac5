// Real clients logging in, in a process of its own: N connections, each repeatedly opening a
// stream and authenticating with SASL PLAIN (or SCRAM-SHA-256) over plain TCP (support/xmpp-client.ts), until
// the count (or, as a safety bound, the time) is up. A run is bounded by its count so that every
// server under test serves the same number of connections (Prosody slows down as it serves
// more). Users are u0..u63 with password "pw-uK" (what the bench script and the internal_plain
// accounts accept).
import { reply, serveParent, type ChildStatus } from './child.js';
import { latencySummary } from './stats.js';
import { type Mechanism, saslLogin } from '../support/xmpp-client.js';

export interface LoginRun {
  type: 'run';
  host: string;
  port: number;
  domain: string;
  connections: number;
  /** Logins to make. */
  logins: number;
  /** Stop starting logins after this long even if the count is not reached. */
  maxDurationMs: number;
  users: number;
  mechanism: Mechanism;
}

export interface LoginResult {
  /** Logins finished, either way. */
  logins: number;
  ok: number;
  /** Failure conditions and how often each came. */
  failures: Record<string, number>;
  /** Successful logins per second, from the first start to the last finish. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
  /** This generator's CPU, as a fraction of one core. */
  generatorCpu: number;
}

export type LoginMessage = { type: 'progress'; logins: number } | { type: 'result'; result: LoginResult } | ChildStatus;
const tell: (message: LoginMessage) => void = reply;

async function measure(run: LoginRun): Promise<LoginResult> {
  const latencies = new Float64Array(run.logins);
  const failures: Record<string, number> = {};
  let started = 0;
  let logins = 0;
  let ok = 0;
  const cpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  let lastDoneAt = startedAt;
  const deadline = startedAt + run.maxDurationMs;
  const progress = setInterval(() => tell({ type: 'progress', logins }), 250);

  const connection = async () => {
    while (started < run.logins && performance.now() < deadline) {
      const user = `u${started++ % run.users}`;
      const result = await saslLogin({
        mechanism: run.mechanism,
        host: run.host,
        port: run.port,
        domain: run.domain,
        username: user,
        password: `pw-${user}`,
        timeoutMs: 10_000,
      }).catch((error: Error) => ({ ok: false, condition: `error: ${error.message}`, elapsedMs: Number.NaN }));
      lastDoneAt = performance.now();
      latencies[logins++] = result.elapsedMs;
      if (result.ok) ok++;
      else failures[result.condition ?? 'unknown'] = (failures[result.condition ?? 'unknown'] ?? 0) + 1;
    }
  };
  try {
    await Promise.all(Array.from({ length: run.connections }, connection));
  } finally {
    clearInterval(progress);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const { p50, p99 } = latencySummary(latencies, logins);
  return {
    logins,
    ok,
    failures,
    rate: (ok * 1000) / (lastDoneAt - startedAt),
    p50Ms: p50,
    p99Ms: p99,
    generatorCpu: (cpu.user + cpu.system) / 1000 / (performance.now() - startedAt),
  };
}

serveParent<LoginRun>(async (run) => {
  if (run.type === 'run') tell({ type: 'result', result: await measure(run) });
});
