// The component on its own, against the fake XEP-0114 server (xep0114-load.ts): what one request
// costs it. Its IQ round trip one at a time (the hop a login through it adds), its CPU per
// request at a steady load, and a login's wait behind one hostile stanza.
import type { BenchScript } from './bench-script.js';
import type { BenchSize } from './cases.js';
import { BENCH_DOMAIN, ComponentUnderLoad } from './component-load.js';
import type { Progress } from './progress.js';
import { median } from './stats.js';
import { type HostileStanza, hostileStanza } from './hostile-input.js';

export interface ComponentFigures {
  /** Instant script, 1 process, lockstep, one request at a time: p50/p99 of the IQ round trip, per run. */
  roundTrip: Array<{ p50Ms: number; p99Ms: number; rate: number }>;
  /** Instant script, 2 processes pipelined, 256 in flight: IQs/s and component CPU µs per IQ, per run. */
  steady: Array<{ rate: number; cpuUsPerRequest: number; cpu: number }>;
  /** Milliseconds for one login's answer: alone, and behind each hostile stanza. */
  hostile: Array<{ label: string; bytes: number; aloneMs: number[]; behindMs: number[]; failures: number }>;
}

/** The stanzas that made the old parser quadratic, each under the component's 1 MiB cap. */
export const HOSTILE_STANZAS: Array<HostileStanza & { label: string }> = [
  { shape: 'attributes', count: 60_000, label: '60,000 attributes' },
  { shape: 'namespaces', count: 60_000, label: '60,000 namespace declarations' },
];
const SLOW_HOSTILE_MS = 2000;

export async function measureComponent(script: BenchScript, size: BenchSize, progress: Progress): Promise<ComponentFigures> {
  const roundTrip: ComponentFigures['roundTrip'] = [];
  const steady: ComponentFigures['steady'] = [];
  progress.scenarioStart('component: IQ round trip, one at a time (instant script, lockstep ×1)');
  await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '1', EXTERNAL_AUTH_BLOCKING: 'true' }, async (loaded) => {
    await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: 300, window: 1 } }); // warm-up
    for (let i = 0; i < size.componentRuns; i++) {
      const r = await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: size.componentRunMs, window: 1 } });
      roundTrip.push({ p50Ms: r.p50Ms, p99Ms: r.p99Ms, rate: r.rate });
      progress.update(`p50 ${r.p50Ms.toFixed(3)} ms`, true);
    }
  });
  progress.scenarioStart('component: steady load (instant script, pipelined ×2, 256 in flight)');
  await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'false' }, async (loaded) => {
    await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: 500, window: 256 } });
    for (let i = 0; i < size.componentRuns; i++) {
      const r = await loaded.measure({ limits: { maxRequests: 1_000_000, durationMs: size.componentRunMs, window: 256 } });
      steady.push({ rate: r.rate, cpuUsPerRequest: r.componentCpuUsPerRequest, cpu: r.componentCpu });
      progress.update(`${Math.round(r.rate)}/s, ${r.componentCpuUsPerRequest.toFixed(1)} µs/IQ`, true);
    }
  });
  const hostile: ComponentFigures['hostile'] = [];
  for (const stanza of HOSTILE_STANZAS) {
    progress.scenarioStart(`component: a login behind one stanza of ${stanza.label}`);
    const row = {
      label: stanza.label,
      bytes: Buffer.byteLength(hostileStanza(stanza, BENCH_DOMAIN)),
      aloneMs: [] as number[],
      behindMs: [] as number[],
      failures: 0,
    };
    hostile.push(row);
    // A fresh component each time: a stanza still being parsed must not delay the next case.
    await withComponent(script, { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'true' }, async (loaded) => {
      const one = { maxRequests: 1, durationMs: 60_000, window: 1 };
      for (let i = 0; i < size.hostileLogins; i++) {
        const alone = await loaded.measure({ limits: one });
        const behind = await loaded.measure({ limits: one, hostile: stanza });
        row.failures += alone.errors + alone.lost + behind.errors + behind.lost;
        row.aloneMs.push(alone.p50Ms);
        row.behindMs.push(behind.p50Ms);
        progress.update(`alone ${alone.p50Ms.toFixed(1)} ms, behind it ${behind.p50Ms.toFixed(1)} ms`, true);
        // A parser that takes seconds per such stanza has made its point once; the run must stay short.
        if (behind.p50Ms > SLOW_HOSTILE_MS) break;
      }
    });
  }
  return { roundTrip, steady, hostile };
}

async function withComponent(script: BenchScript, env: Record<string, string>, use: (loaded: ComponentUnderLoad) => Promise<void>): Promise<void> {
  const loaded = await ComponentUnderLoad.start({ protocol: 'generic', script: script.command('generic', 0), env: { LOG_LEVEL: 'warn', ...env } });
  try {
    await use(loaded);
  } finally {
    await loaded.stop();
  }
}

export const medianRoundTripMs = (f: ComponentFigures): number => median(f.roundTrip.map((r) => r.p50Ms));
