import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

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
  connected(): boolean;
  reconnects(): number;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The component's Prometheus metrics. Gauges are read from the probe when scraped, so the
 * request path pays only for the two it must: a counter and a histogram, whose labelled
 * children are looked up once and kept. Labels are request kinds, outcomes and restart
 * reasons: a handful of fixed words, never a user name or a password.
 */
export class ComponentMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'kind' | 'outcome'>;
  private readonly duration: Histogram<'kind'>;
  private readonly requestChildren = new Map<string, Map<string, { inc(): void }>>();
  private readonly durationChildren = new Map<string, { observe(value: number): void }>();

  constructor(probe: ComponentProbe) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'extauth_requests_total', help: 'Auth queries answered, by kind and outcome (true, false or the stanza error condition)', labelNames: ['kind', 'outcome'], registers });
    this.duration = new Histogram({ name: 'extauth_request_duration_seconds', help: 'Seconds from an auth query arriving to its answer', labelNames: ['kind'], buckets: DURATION_BUCKETS, registers });
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
    new Gauge({
      name: 'extauth_queue_depth',
      help: 'Requests waiting for a free script process',
      registers,
      collect() {
        this.set(probe.queued());
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
    let byOutcome = this.requestChildren.get(kind);
    if (byOutcome === undefined) this.requestChildren.set(kind, (byOutcome = new Map()));
    let counter = byOutcome.get(outcome);
    if (counter === undefined) byOutcome.set(outcome, (counter = this.requests.labels(kind, outcome)));
    counter.inc();
    let histogram = this.durationChildren.get(kind);
    if (histogram === undefined) {
      histogram = this.duration.labels(kind);
      this.durationChildren.set(kind, histogram);
    }
    histogram.observe(ms / 1000);
  }
}
