import type { Logger } from 'pino';
import type { AuthRequest } from '../core/auth-request.js';
import { Failure } from '../core/failure.js';
import { requestFields } from '../codec/request-fields.js';
import type { ScriptCodec } from '../codec/codec.js';
import { Fifo } from '../core/fifo.js';
import type { Job, Outcome } from './job.js';
import { FAILING_AFTER_RESTARTS, type RestartReason, type ScriptWorker, type ScriptWorkerEvents, type ScriptWorkerOptions } from '../worker/script-worker.js';

export type { RestartReason };

/** Rolling restart: how long a new process must stay up (if it answers nothing) before the old one goes. */
const PROVING_MS = 1000;

export interface ScriptPoolOptions {
  readonly processes: number;
  /** Requests one process may hold at once: 1 is lockstep. */
  readonly depth: number;
  readonly queueLimit: number;
  /** Each request's whole budget, from its arrival: queue, attempt and any retry. */
  readonly timeoutMs: number;
  readonly codec: ScriptCodec;
  readonly log: Logger;
  readonly createWorker: (options: Pick<ScriptWorkerOptions, 'id' | 'depth'>, events: ScriptWorkerEvents) => ScriptWorker;
  /** Called each time a script process is replaced, with why. */
  readonly onRestart?: (reason: RestartReason) => void;
}

/**
 * Chooses workers; knows nothing of processes. Each request goes to the least busy worker that
 * can take it, or waits in a bounded queue. Requests stranded on a lost process come back here
 * and go first. A request has one deadline, its arrival plus the timeout, whatever happens to it
 * on the way: it is answered by then, with the script's answer or a timeout.
 */
export class ScriptPool {
  private readonly workers: ScriptWorker[] = [];
  /** Workers outside the rotation: new ones starting during a rolling restart, old ones retiring. */
  private readonly extra = new Set<ScriptWorker>();
  private readonly waiting = new Fifo<Job>();
  private readonly retrying = new Fifo<Job>();
  private readonly restartCounts = new Map<RestartReason, number>();
  private outstanding = 0;
  private strays = 0;
  private nextTag = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private accepting = true;
  private paused = false;
  private rolling: Promise<void> | null = null;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly options: ScriptPoolOptions) {
    for (let id = 1; id <= options.processes; id++) this.workers.push(this.makeWorker(id));
  }

  start(): void {
    for (const worker of this.workers) worker.start();
  }

  /** Requests not yet answered, waiting or in a script. */
  get pending(): number {
    return this.outstanding;
  }

  /** Requests waiting for a free process (including those waiting for a retry). */
  get queueDepth(): number {
    return this.waiting.length + this.retrying.length;
  }

  /** Requests written to a script and not yet answered. */
  get inFlight(): number {
    return this.outstanding - this.queueDepth;
  }

  /** Script processes running and ready for requests (those being retired included). */
  get processesUp(): number {
    let up = 0;
    for (const worker of this.workers) if (worker.up) up++;
    for (const worker of this.extra) if (worker.up) up++;
    return up;
  }

  /**
   * Processes up and answering: not restarted FAILING_AFTER_RESTARTS times in a row without an
   * answer; and the fewest restarts in a row among all processes (for the health check).
   */
  get answering(): { processes: number; failuresInARow: number } {
    let processes = 0;
    let failuresInARow = Infinity;
    for (const worker of [...this.workers, ...this.extra]) {
      failuresInARow = Math.min(failuresInARow, worker.failuresInARow);
      if (worker.up && worker.failuresInARow < FAILING_AFTER_RESTARTS) processes++;
    }
    return { processes, failuresInARow: failuresInARow === Infinity ? 0 : failuresInARow };
  }

  /** How often a script process was replaced, by reason, since the pool was made. */
  get restarts(): ReadonlyMap<RestartReason, number> {
    return this.restartCounts;
  }

  /** Tagged: answers dropped since the pool was made because no request in flight had their id. */
  get strayAnswers(): number {
    return this.strays;
  }

  /** The pids of the processes in rotation (undefined where none is running). */
  get pids(): Array<number | undefined> {
    return this.workers.map((worker) => worker.pid);
  }

  /**
   * Calls `done` exactly once, with the script's answer or the Failure that stands in for it
   * (possibly before returning). A callback rather than a promise: with thousands of requests
   * in flight, two promises and their closures per request are most of the memory.
   */
  submit(request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void): void {
    if (!this.accepting) return done(new Failure('stopping', 'the auth component is shutting down'));
    const { codec } = this.options;
    if (request.kind === 'scram' && !codec.scram) {
      // Never asked: the script could not answer it in its protocol.
      return done(
        new Failure('unsupported', `the ${codec.name} script protocol cannot carry SCRAM credentials (EXTERNAL_AUTH_PROTOCOL=generic or tagged can)`),
      );
    }
    const fields = requestFields(request);
    // An id unique in the whole pool and never reused, so that a retried request keeps it and
    // a late answer can never be taken for another request's.
    const tag = this.options.codec.tagged ? (this.nextTag++).toString(36) : undefined;
    let payload: Buffer;
    try {
      // Encoding first: a request the protocol cannot carry never takes a place in the queue.
      payload = this.options.codec.encode(fields, tag);
    } catch (error) {
      if (error instanceof Failure) return done(error);
      throw error;
    }
    const job = new PoolJob(this, request, fields, tag, payload, arrivedAt + this.options.timeoutMs, done);
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

  /** Stops taking requests and resolves when every one taken has been answered (by its deadline at the latest). */
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
    await Promise.all([...this.workers, ...this.extra].map((worker) => worker.close()));
  }

  /** SIGKILL to every script's process group, synchronously: for an exit that cannot wait. */
  killAll(): void {
    for (const worker of [...this.workers, ...this.extra]) worker.killNow();
  }

  /** Stops reading every script's output (the XMPP side cannot take more answers for now). */
  pause(): void {
    this.paused = true;
    for (const worker of [...this.workers, ...this.extra]) worker.pause();
  }

  resume(): void {
    this.paused = false;
    for (const worker of [...this.workers, ...this.extra]) worker.resume();
  }

  /**
   * Replaces every script process, one at a time, without failing a request: a new process is
   * started; once it is ready, new requests go to it; the old one answers what it holds and is
   * then closed (EOF, SIGTERM, SIGKILL). If a new process does not come up, the old ones stay.
   * A call while one is under way joins it.
   */
  restartAll(): Promise<void> {
    this.rolling ??= this.roll().finally(() => (this.rolling = null));
    return this.rolling;
  }

  private async roll(): Promise<void> {
    const { log } = this.options;
    log.info({ processes: this.workers.length }, 'rolling restart of the script processes');
    for (let i = 0; i < this.workers.length; i++) {
      if (!this.accepting) return;
      const old = this.workers[i]!;
      const fresh = this.makeWorker(old.id);
      this.extra.add(fresh);
      fresh.start();
      if (this.paused) fresh.pause();
      const ok = await fresh.started();
      this.extra.delete(fresh);
      if (!ok || !this.accepting) {
        if (this.accepting) log.error({ worker: old.id }, 'rolling restart stopped: the new script process did not start; the old ones keep serving');
        await fresh.close();
        return;
      }
      // New requests go to the new process; the old one stays until the new one has shown it
      // works (an answer, or staying up a moment), so a broken new script replaces nothing.
      this.workers[i] = fresh;
      this.extra.add(old);
      log.info({ worker: old.id, oldPid: old.pid, newPid: fresh.pid, held: old.load }, 'rolling restart: the new script process takes new requests');
      this.pump();
      const proven = await fresh.proven(Math.min(PROVING_MS, this.options.timeoutMs));
      if (!proven || !this.accepting) {
        if (this.workers[i] === fresh) this.workers[i] = old;
        this.extra.delete(old);
        if (this.accepting) {
          log.error({ worker: old.id, newPid: fresh.pid }, 'rolling restart stopped: the new script process failed; the old ones keep serving');
          this.pump();
        }
        await fresh.close();
        return;
      }
      this.countRestart('rolling');
      log.info({ worker: old.id, oldPid: old.pid, held: old.load }, 'rolling restart: retiring the old script process');
      await old.retire();
      this.extra.delete(old);
    }
    log.info('rolling restart done');
  }

  private makeWorker(id: number): ScriptWorker {
    return this.options.createWorker(
      { id, depth: this.options.depth },
      {
        capacity: () => this.pump(),
        stranded: (jobs) => this.requeue(jobs),
        restarted: (reason) => this.countRestart(reason),
        strayAnswer: () => this.strays++,
      },
    );
  }

  private countRestart(reason: RestartReason): void {
    this.restartCounts.set(reason, (this.restartCounts.get(reason) ?? 0) + 1);
    this.options.onRestart?.(reason);
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

  /** Stranded requests keep the deadline they arrived with: a retry is within the same budget. */
  private requeue(jobs: Job[]): void {
    let earliest = Infinity;
    for (const job of jobs) {
      job.retried = true;
      earliest = Math.min(earliest, job.deadline);
      this.retrying.push(job);
    }
    this.armTimer(earliest);
    this.options.log.debug({ count: jobs.length }, 'retrying requests from a lost script process');
    this.pump();
  }

  private pump(): void {
    let now: number | undefined;
    for (;;) {
      const queue = this.retrying.length > 0 ? this.retrying : this.waiting;
      if (queue.length === 0) return;
      const worker = this.leastBusy();
      if (worker === undefined) {
        if (this.allCannotStart()) this.failQueued(new Failure('cannot-start', 'the auth script cannot be started'));
        return;
      }
      const job = queue.shift()!;
      // One whose deadline has just passed is not worth a place on a process.
      now ??= performance.now();
      if (job.deadline <= now) job.settle(this.queueTimeout());
      else worker.assign(job);
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

  private queueTimeout(): Failure {
    return new Failure('timeout', `no auth script process answered within ${this.options.timeoutMs / 1000} s`);
  }

  private expireQueued(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    const error = this.queueTimeout();
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
    readonly tag: string | undefined,
    readonly payload: Buffer,
    readonly deadline: number,
    private readonly done: (outcome: Outcome) => void,
  ) {}

  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.pool.finished();
    this.done(outcome);
  }
}
