import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric, type MetricValueWithName } from 'prom-client';

/** What the metrics and the health check read from the running component, when asked. */
export interface ComponentProbe {
  /** Requests waiting for a free script process. */
  queued(): number;
  /** Requests written to a script and not yet answered. */
  inFlight(): number;
  /** Script processes running and ready. */
  processesUp(): number;
  /** Processes up and not failing restart after restart; the fewest restarts in a row of any. */
  answering(): { processes: number; failuresInARow: number };
  /** Process replacements so far, by reason. */
  restarts(): ReadonlyMap<string, number>;
  /** Tagged: answers dropped because no request in flight had their id (none when absent). */
  strayAnswers?(): number;
  connected(): boolean;
  reconnects(): number;
  /** The credential cache's counts since start; null when the cache is off. */
  cache(): { readonly hits: number; readonly misses: number; readonly stale: number; readonly entries: number } | null;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION = 'extauth_request_duration_seconds';

/** One request kind's answers so far: plain numbers, turned into metrics only when scraped. */
class KindTally {
  readonly outcomes = new Map<string, number>();
  /** Answers per bucket (not cumulative); slower than the last bound counts only in `count`. */
  readonly buckets = new Float64Array(DURATION_BUCKETS.length);
  sum = 0;
  count = 0;
}

/**
 * The component's Prometheus metrics. Everything is read when scraped: the gauges from the
 * probe, the request counts and latencies from plain tallies that the request path bumps (a
 * map lookup and a few additions, no label hashing). Labels are request kinds, outcomes and
 * restart reasons: a handful of fixed words, never a user name or a password.
 */
export class ComponentMetrics {
  readonly registry = new Registry();
  private readonly tallies = new Map<string, KindTally>();

  /** `queueLimit`: EXTERNAL_AUTH_QUEUE, exported so that an alert can compare the queue's depth with it. */
  constructor(probe: ComponentProbe, settings: { readonly queueLimit: number } = { queueLimit: 0 }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const tallies = this.tallies;
    new Counter({
      name: 'extauth_requests_total',
      help: 'Auth queries answered, by kind and outcome (true, false or the stanza error condition)',
      labelNames: ['kind', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const [kind, tally] of tallies) for (const [outcome, count] of tally.outcomes) this.inc({ kind, outcome }, count);
      },
    });
    this.registry.registerMetric(durationHistogram(tallies));
    new Counter({
      name: 'extauth_script_restarts_total',
      help: 'Script processes replaced, by reason',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, count] of probe.restarts()) this.inc({ reason }, count);
      },
    });
    new Counter({
      name: 'extauth_script_stray_answers_total',
      help: 'Answers a tagged script gave for an id not in flight (a second or late answer), dropped without a restart',
      registers,
      collect() {
        this.reset();
        this.inc(probe.strayAnswers?.() ?? 0);
      },
    });
    new Gauge({
      name: 'extauth_queue_depth',
      help: 'Requests waiting for a free script process',
      registers,
      collect() {
        this.set(probe.queued());
      },
    });
    new Gauge({
      name: 'extauth_queue_limit',
      help: 'Most requests that may wait for a free script process (EXTERNAL_AUTH_QUEUE); more are refused',
      registers,
      collect() {
        this.set(settings.queueLimit);
      },
    });
    new Gauge({
      name: 'extauth_in_flight',
      help: 'Requests a script process is working on',
      registers,
      collect() {
        this.set(probe.inFlight());
      },
    });
    new Gauge({
      name: 'extauth_script_processes_up',
      help: 'Script processes running and ready for requests',
      registers,
      collect() {
        this.set(probe.processesUp());
      },
    });
    new Gauge({
      name: 'extauth_xmpp_connected',
      help: '1 while the stream to the XMPP server is up',
      registers,
      collect() {
        this.set(probe.connected() ? 1 : 0);
      },
    });
    const cacheCounter = (name: string, help: string, read: (stats: NonNullable<ReturnType<ComponentProbe['cache']>>) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const stats = probe.cache();
          if (stats) this.inc(read(stats));
        },
      });
    cacheCounter('extauth_cache_hits_total', 'auth/isuser queries answered from the credential cache without asking the script', (stats) => stats.hits);
    cacheCounter('extauth_cache_misses_total', 'auth/isuser queries the credential cache could not answer, sent to the script', (stats) => stats.misses);
    cacheCounter('extauth_cache_stale_answers_total', 'Queries the credential cache answered because the script failed (outage)', (stats) => stats.stale);
    new Gauge({
      name: 'extauth_cache_entries',
      help: 'Entries held by the credential cache',
      registers,
      collect() {
        this.set(probe.cache()?.entries ?? 0);
      },
    });
    new Counter({
      name: 'extauth_xmpp_reconnects_total',
      help: 'Connection attempts to the XMPP server after a lost connection or a failed attempt',
      registers,
      collect() {
        this.reset();
        this.inc(probe.reconnects());
      },
    });
  }

  /** One answered auth query; `outcome` is `true`, `false` or a stanza error condition. */
  answered(kind: string, outcome: string, ms: number): void {
    let tally = this.tallies.get(kind);
    if (tally === undefined) this.tallies.set(kind, (tally = new KindTally()));
    tally.outcomes.set(outcome, (tally.outcomes.get(outcome) ?? 0) + 1);
    const seconds = ms / 1000;
    tally.sum += seconds;
    tally.count++;
    let bucket = 0;
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]!) bucket++;
    if (bucket < DURATION_BUCKETS.length) tally.buckets[bucket]!++;
  }
}

/** The latency histogram as prom-client prints one, built from the tallies when scraped. */
function durationHistogram(tallies: ReadonlyMap<string, KindTally>): Metric {
  const help = 'Seconds from an auth query arriving to its answer';
  const metric = {
    name: DURATION,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const values: Array<MetricValueWithName<string>> = [];
      for (const [kind, tally] of tallies) {
        let cumulative = 0;
        DURATION_BUCKETS.forEach((bound, i) => {
          cumulative += tally.buckets[i]!;
          values.push({ metricName: `${DURATION}_bucket`, labels: { le: bound, kind }, value: cumulative });
        });
        values.push({ metricName: `${DURATION}_bucket`, labels: { le: '+Inf', kind }, value: tally.count });
        values.push({ metricName: `${DURATION}_sum`, labels: { kind }, value: tally.sum });
        values.push({ metricName: `${DURATION}_count`, labels: { kind }, value: tally.count });
      }
      return { name: DURATION, help, type: 'histogram', aggregator: 'sum', values };
    },
  };
  return metric as unknown as Metric;
}
