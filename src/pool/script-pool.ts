import type { Logger } from 'pino';
import type { AuthRequest } from '../core/auth-request.js';
import { Failure } from '../core/failure.js';
import { requestFields } from '../codec/request-fields.js';
import type { ScriptCodec } from '../codec/codec.js';
import { Fifo } from '../core/fifo.js';
import type { Job, Outcome } from './job.js';
import { FAILING_AFTER_RESTARTS, ScriptWorker, type ScriptWorkerOptions } from '../worker/script-worker.js';

export interface ScriptPoolOptions {
  readonly processes: number;
  /** Requests one process may hold at once: 1 is lockstep. */
  readonly depth: number;
  readonly queueLimit: number;
  readonly timeoutMs: number;
  readonly codec: ScriptCodec;
  readonly log: Logger;
  readonly createWorker: (options: Pick<ScriptWorkerOptions, 'id' | 'depth'>, events: ConstructorParameters<typeof ScriptWorker>[1]) => ScriptWorker;
}

/**
 * Chooses workers; knows nothing of processes. Each request goes to the least busy worker that
 * can take it, or waits in a bounded queue. Requests stranded on a lost process come back here
 * and go first, keeping the deadline they arrived with.
 */
export class ScriptPool {
  private readonly workers: ScriptWorker[] = [];
  private readonly waiting = new Fifo<Job>();
  private readonly retrying = new Fifo<Job>();
  private outstanding = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private accepting = true;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: ScriptPoolOptions) {
    for (let id = 1; id <= options.processes; id++) {
      this.workers.push(
        options.createWorker(
          { id, depth: options.depth },
          { capacity: () => this.pump(), stranded: (jobs) => this.requeue(jobs) },
        ),
      );
    }
  }

  start(): void {
    for (const worker of this.workers) worker.start();
  }

  /** Requests not yet answered, waiting or in a script. */
  get pending(): number {
    return this.outstanding;
  }

  /** Requests waiting for a free process (read by metrics when scraped). */
  get queued(): number {
    return this.waiting.length + this.retrying.length;
  }

  /** Processes running and ready, and among them those not failing restart after restart. */
  get processes(): { up: number; answering: number; failuresInARow: number } {
    let up = 0;
    let answering = 0;
    let failuresInARow = Infinity;
    for (const worker of this.workers) {
      failuresInARow = Math.min(failuresInARow, worker.failuresInARow);
      if (!worker.up) continue;
      up++;
      if (worker.failuresInARow < FAILING_AFTER_RESTARTS) answering++;
    }
    return { up, answering, failuresInARow: failuresInARow === Infinity ? 0 : failuresInARow };
  }

  /**
   * Calls `done` exactly once, with the script's answer or the Failure that stands in for it
   * (possibly before returning). A callback rather than a promise: with thousands of requests
   * in flight, two promises and their closures per request are most of the memory.
   */
  submit(request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void): void {
    if (!this.accepting) return done(new Failure('stopping', 'the auth component is shutting down'));
    const fields = requestFields(request);
    let payload: Buffer;
    try {
      // Encoding first: a request the protocol cannot carry never takes a place in the queue.
      payload = this.options.codec.encode(fields);
    } catch (error) {
      if (error instanceof Failure) return done(error);
      throw error;
    }
    const job = new PoolJob(this, request, fields, payload, arrivedAt + this.options.timeoutMs, done);
    this.outstanding++;
    const worker = this.waiting.length === 0 && this.retrying.length === 0 ? this.leastBusy() : undefined;
    if (worker) return worker.assign(job);
    if (this.waiting.length >= this.options.queueLimit) {
      return job.settle(new Failure('overloaded', `more than ${this.options.queueLimit} requests are waiting for the auth script`));
    }
    if (this.allCannotStart()) return job.settle(new Failure('cannot-start', 'the auth script cannot be started'));
    this.waiting.push(job);
    this.armTimer(job.deadline);
  }

  /** Called by a job once it is settled. */
  finished(): void {
    this.outstanding--;
    if (this.outstanding === 0) this.notifyIdle();
  }

  /** Stops taking requests and resolves when every one taken has been answered. */
  drain(): Promise<void> {
    this.accepting = false;
    if (this.outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.accepting = false;
    clearTimeout(this.timer);
    const error = new Failure('stopping', 'the auth component is shutting down');
    for (const job of [...this.retrying.drain(), ...this.waiting.drain()]) job.settle(error);
    await Promise.all(this.workers.map((worker) => worker.close()));
  }

  private leastBusy(): ScriptWorker | undefined {
    let best: ScriptWorker | undefined;
    for (const worker of this.workers) {
      if (worker.accepting && (best === undefined || worker.load < best.load)) {
        best = worker;
        if (best.load === 0) break;
      }
    }
    return best;
  }

  private requeue(jobs: Job[]): void {
    const deadline = performance.now() + this.options.timeoutMs;
    for (const job of jobs) {
      job.retried = true;
      job.deadline = deadline;
      this.retrying.push(job);
    }
    this.armTimer(deadline);
    this.options.log.debug({ count: jobs.length }, 'retrying requests from a lost script process');
    this.pump();
  }

  private pump(): void {
    for (;;) {
      const queue = this.retrying.length > 0 ? this.retrying : this.waiting;
      if (queue.length === 0) return;
      const worker = this.leastBusy();
      if (worker === undefined) {
        if (this.allCannotStart()) this.failQueued(new Failure('cannot-start', 'the auth script cannot be started'));
        return;
      }
      worker.assign(queue.shift()!);
    }
  }

  private allCannotStart(): boolean {
    return this.workers.every((worker) => worker.startFailed && !worker.alive);
  }

  private failQueued(error: Failure): void {
    for (const job of [...this.retrying.drain(), ...this.waiting.drain()]) job.settle(error);
  }

  // One timer for everything queued, armed for the earliest deadline and re-armed when it fires.
  private armTimer(at: number): void {
    if (at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expireQueued(), Math.max(1, Math.ceil(at - performance.now())));
  }

  private expireQueued(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const error = new Failure('timeout', `no auth script process was free within ${this.options.timeoutMs / 1000} s`);
    // Waiting requests arrived in deadline order; retried ones may not have.
    while (this.waiting.length > 0 && this.waiting.peek()!.deadline <= now) this.waiting.shift()!.settle(error);
    let earliest = this.waiting.peek()?.deadline ?? Infinity;
    const kept: Job[] = [];
    for (const job of this.retrying.drain()) {
      if (job.deadline <= now) job.settle(error);
      else {
        kept.push(job);
        earliest = Math.min(earliest, job.deadline);
      }
    }
    for (const job of kept) this.retrying.push(job);
    if (earliest < Infinity) this.armTimer(earliest);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

class PoolJob implements Job {
  retried = false;
  private settled = false;

  constructor(
    private readonly pool: ScriptPool,
    readonly request: AuthRequest,
    readonly fields: string,
    readonly payload: Buffer,
    public deadline: number,
    private readonly done: (outcome: Outcome) => void,
  ) {}

  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.pool.finished();
    this.done(outcome);
  }
}
