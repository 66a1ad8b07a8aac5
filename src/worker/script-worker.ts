import { Failure } from '../core/failure.js';
import type { Job } from '../core/job.js';
import { SecretMemory } from '../core/redaction.js';
import { FAILING_AFTER_RESTARTS, type RestartReason } from '../core/restart.js';
import { ScriptSession, type ScriptSessionOptions } from './script-session.js';

/**
 * What every session of this worker is started with (the process, its protocol, depth and
 * deadline), plus what belongs to the supervisor. The session's `timeoutMs` is the longest a
 * process may take to answer before it counts as hung and is killed; the requester's own
 * deadline (on the job) may come sooner.
 */
export interface ScriptWorkerOptions extends Pick<ScriptSessionOptions, 'command' | 'codec' | 'launch' | 'depth' | 'timeoutMs' | 'log' | 'silentTimeoutHint'> {
  readonly id: number;
  readonly restartDelay: (failures: number) => number;
  /** Shutdown: how long to wait after EOF, then after SIGTERM, before the next step. */
  readonly closeGraceMs: number;
}

export interface ScriptWorkerEvents {
  /** The worker can take more requests, or could not start: either way the pool should look again. */
  capacity(worker: ScriptWorker): void;
  /** Requests that were on a lost process and may safely be tried on another. */
  stranded(jobs: Job[]): void;
  /** The worker is replacing its process. */
  restarted(reason: RestartReason): void;
  /** Tagged: an answer named an id that is not in flight; it was dropped and the process kept. */
  strayAnswer(): void;
}

/** How many answered requests stay remembered for redacting the script's stderr. */
const RECENT_REQUESTS_REDACTED = 1024;

type State = 'idle' | 'starting' | 'ready' | 'restarting' | 'closing' | 'closed';

/**
 * Keeps one script process running in one place of the pool, as ejabberd's `extauth_sup` keeps
 * its `extauth` workers: starts a session (one process), replaces it with backoff whenever it is
 * lost, retires it on a rolling restart, and closes it on shutdown. Everything about the process
 * itself (its requests, answers, deadlines, stderr) belongs to the session, which ends with it.
 */
export class ScriptWorker {
  private state: State = 'idle';
  private session: ScriptSession | null = null;
  /** Outlives sessions: a script's stderr can lag well behind its answers. */
  private readonly secrets: SecretMemory;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | null = null;
  private readyWaiters: Array<(ok: boolean) => void> = [];
  private provenWaiters: Array<(ok: boolean) => void> = [];
  private retiring = false;
  /** Set while retiring: closes the worker once its process holds nothing more. */
  private retired: (() => void) | null = null;
  private paused = false;
  /** The last start attempt failed because the program could not be run at all. */
  startFailed = false;

  constructor(
    private readonly options: ScriptWorkerOptions,
    private readonly events: ScriptWorkerEvents,
  ) {
    // Two entries a request (fields, password) for everything in flight and the last 1024 answered.
    this.secrets = new SecretMemory(2 * (options.depth + RECENT_REQUESTS_REDACTED));
  }

  get id(): number {
    return this.options.id;
  }

  /** Requests the process holds, including timed-out ones whose answers are still awaited. */
  get load(): number {
    return this.session?.load ?? 0;
  }

  get accepting(): boolean {
    return this.state === 'ready' && !this.retiring && this.session?.accepting === true;
  }

  get alive(): boolean {
    return this.state === 'ready' || this.state === 'starting';
  }

  /** A process is running and ready for requests. */
  get up(): boolean {
    return this.state === 'ready' && this.session !== null;
  }

  get pid(): number | undefined {
    return this.session?.pid;
  }

  /** Restarts since the script last answered a request. */
  get failuresInARow(): number {
    return this.failures;
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'restarting') return;
    this.state = 'starting';
    const { id, command, codec, launch, depth, timeoutMs, log, silentTimeoutHint } = this.options;
    const session: ScriptSession = new ScriptSession(
      { worker: id, command, codec, launch, depth, timeoutMs, log, secrets: this.secrets, paused: this.paused, silentTimeoutHint },
      {
        ready: () => {
          this.state = 'ready';
          this.startFailed = false;
          this.announceStart(true);
          this.events.capacity(this);
        },
        answered: () => {
          this.failures = 0;
          this.announceProven(true);
        },
        strayAnswer: () => this.events.strayAnswer(),
        progress: () => {
          this.settleRetirement();
          if (this.accepting) this.events.capacity(this);
        },
        lost: (reason, retry) => {
          this.session = null;
          // Not up from here on: the pool may hand the stranded requests straight to a worker.
          if (this.state === 'starting' || this.state === 'ready') this.state = 'restarting';
          if (retry.length > 0) this.events.stranded(retry);
          if (reason === 'cannot-start') {
            this.startFailed = true;
            // Lets the pool fail what waits for a process that may never come, instead of timing out.
            queueMicrotask(() => this.events.capacity(this));
          }
          this.scheduleRestart(reason);
        },
      },
    );
    // Events a session sends while it is being made (a launch that fails at once) come after this.
    this.session = session;
  }

  /**
   * Resolves true once a process is ready for requests, false if the attempt failed (the
   * worker then keeps trying on its own, with backoff).
   */
  started(): Promise<boolean> {
    if (this.up) return Promise.resolve(true);
    if (this.state === 'closing' || this.state === 'closed') return Promise.resolve(false);
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * Resolves true once the current process has answered a request, or is still up after
   * `withinMs`; false as soon as it is lost. A process that is merely ready may still be a
   * script that dies on its first request.
   */
  proven(withinMs: number): Promise<boolean> {
    if (!this.up) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish(this.up), withinMs);
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        this.provenWaiters = this.provenWaiters.filter((waiter) => waiter !== finish);
        resolve(ok);
      };
      this.provenWaiters.push(finish);
    });
  }

  /** Writes a request to the process. The pool only calls this while `accepting`. */
  assign(job: Job): void {
    if (!this.accepting || this.session === null) throw new Error(`worker ${this.id} is not accepting`);
    this.session.assign(job);
  }

  /** Stops reading the script's output until `resume()` (the reader downstream is congested). */
  pause(): void {
    this.paused = true;
    this.session?.pause();
  }

  resume(): void {
    this.paused = false;
    this.session?.resume();
  }

  /**
   * Takes no more requests, lets the process answer those it holds, then closes it (EOF,
   * SIGTERM, SIGKILL). Used to replace a process without failing anything.
   */
  retire(): Promise<void> {
    this.retiring = true;
    clearTimeout(this.restartTimer);
    this.announceStart(false);
    if (this.load === 0 || !this.up) return this.close();
    return new Promise((resolve) => (this.retired = () => resolve(this.close())));
  }

  /** SIGKILL to the process group, at once and synchronously: the last resort on a forced exit. */
  killNow(): void {
    this.session?.killNow();
  }

  /** EOF, then SIGTERM, then SIGKILL; requests still held are answered with an error. */
  close(): Promise<void> {
    if (this.closed === null) {
      this.closed = this.shutDown();
      // A retirement under way ends with this close (what the process held has been failed).
      this.settleRetirement();
    }
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    this.state = 'closing';
    clearTimeout(this.restartTimer);
    this.announceStart(false);
    this.announceProven(false);
    // Kept while it closes: a second signal may still need to kill its process at once.
    await this.session?.close(new Failure('stopping', 'the auth component is shutting down'), this.options.closeGraceMs);
    this.state = 'closed';
  }

  private announceProven(ok: boolean): void {
    for (const finish of [...this.provenWaiters]) finish(ok);
  }

  private announceStart(ok: boolean): void {
    if (this.readyWaiters.length === 0) return;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const resolve of waiters) resolve(ok);
  }

  /** A retiring worker whose process holds nothing more closes. */
  private settleRetirement(): void {
    if (this.retired === null || this.load > 0) return;
    const close = this.retired;
    this.retired = null;
    close();
  }

  private scheduleRestart(reason: RestartReason): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'restarting';
    this.announceStart(false);
    this.announceProven(false);
    // Being replaced anyway: what it held has been answered or handed back.
    if (this.retiring) return this.settleRetirement();
    this.events.restarted(reason);
    const delay = this.options.restartDelay(this.failures++);
    const { log } = this.options;
    if (this.failures >= FAILING_AFTER_RESTARTS) {
      const problem = `the script keeps failing: restarted ${this.failures} times in a row without answering`;
      log.error({ event: 'script.restarted', worker: this.id, delayMs: delay, reason, failuresInARow: this.failures, problem }, 'restarting script');
    } else {
      log.info({ event: 'script.restarted', worker: this.id, delayMs: delay, reason }, 'restarting script');
    }
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.start(), delay);
  }
}
