// An unrelated client, in a process of its own: opens a stream every few milliseconds and
// measures the time until <stream:features/> (support/xmpp-client.ts). While logins run,
// this shows whether the server stays responsive (the old in-server module froze Prosody for
// the script's whole duration).
import { reply, serveParent, type ChildStatus } from './child.js';
import { latencySummary } from './stats.js';
import { timeToStreamFeatures } from '../support/xmpp-client.js';

export type ProbeCommand = ProbeRun | { type: 'stop' };

export interface ProbeRun {
  type: 'run';
  host: string;
  port: number;
  domain: string;
  /** Probe until told to stop, or at most this long. */
  maxDurationMs: number;
  /** Pause between two stream opens. */
  intervalMs: number;
  maxProbes: number;
  /** Stream opens made first and not counted (a fresh server, a cold client). */
  warmupProbes: number;
}

export interface ProbeResult {
  probes: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export type ProbeMessage = { type: 'result'; result: ProbeResult } | ChildStatus;
const tell: (message: ProbeMessage) => void = reply;
let stopRequested = false;

async function measure(run: ProbeRun): Promise<ProbeResult> {
  const samples = new Float64Array(run.maxProbes);
  let probes = 0;
  let failures = 0;
  for (let i = 0; i < run.warmupProbes; i++) await timeToStreamFeatures({ host: run.host, port: run.port, domain: run.domain, timeoutMs: 5000 }).catch(() => 0);
  stopRequested = false;
  const deadline = performance.now() + run.maxDurationMs;
  while (!stopRequested && performance.now() < deadline && probes + failures < run.maxProbes) {
    try {
      samples[probes++] = await timeToStreamFeatures({ host: run.host, port: run.port, domain: run.domain, timeoutMs: 5000 });
    } catch {
      failures++;
    }
    await new Promise((resolve) => setTimeout(resolve, run.intervalMs));
  }
  const { p50, p99 } = latencySummary(samples, probes); // sorts samples[0..probes)
  return { probes, failures, p50Ms: p50, p99Ms: p99, maxMs: probes > 0 ? samples[probes - 1]! : Number.NaN };
}

serveParent<ProbeCommand>(async (command) => {
  if (command.type === 'stop') stopRequested = true;
  else if (command.type === 'run') tell({ type: 'result', result: await measure(command) });
});
