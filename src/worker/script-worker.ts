import type { Logger } from 'pino';
import { REQUEST_KINDS } from '../core/auth-request.js';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from '../codec/codec.js';
import { Fifo } from '../core/fifo.js';
import { Failure } from '../core/failure.js';
import type { Job } from '../pool/job.js';
import type { ScriptCommand, ScriptExit, ScriptLauncher, ScriptProcess } from './script-process.js';
import { SecretMemory, StderrRelay } from './stderr-relay.js';

export interface ScriptWorkerOptions {
  readonly id: number;
  readonly command: ScriptCommand;
  readonly codec: ScriptCodec;
  readonly launch: ScriptLauncher;
  /** Requests one process may hold at once: 1 is lockstep. */
  readonly depth: number;
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly restartDelay: (failures: number) => number;
  /** Shutdown: how long to wait after EOF, then after SIGTERM, before the next step. */
  readonly closeGraceMs: number;
  /** Hint shown when a script over pipes never wrote anything before a timeout. */
  readonly silentTimeoutHint?: string;
}

export interface ScriptWorkerEvents {
  /** The worker can take more requests, or could not start: either way the pool should look again. */
  capacity(worker: ScriptWorker): void;
  /** Requests that were on a lost process and may safely be tried on another. */
  stranded(jobs: Job[]): void;
  /** The process is being replaced; `reason` is a short fixed word (exited, timeout, ...). */
  restarted?(reason: string): void;
}

/** Restarts in a row without an answer from which a script counts as failing (logged at error, unhealthy). */
export const FAILING_AFTER_RESTARTS = 3;

/** How many answered requests stay remembered for redacting the script's stderr. */
const RECENT_REQUESTS_REDACTED = 1024;

/** What one answer says about the process: fine, or no longer to be trusted. */
type Verdict = 'ok' | 'unsolicited' | 'invalid';

type State = 'idle' | 'starting' | 'ready' | 'restarting' | 'closing' | 'closed';

/**
 * Owns one script process at a time: writes requests, matches answers to them in order,
 * enforces deadlines, and replaces the process whenever its answers can no longer be trusted
 * (timeout, garbage, unsolicited output) or it exits. Like ejabberd's extauth worker, a
 * process that missed a deadline is killed, so a late answer can never be read as the answer
 * to a later request.
 */
export class ScriptWorker {
  private state: State = 'idle';
  private process: ScriptProcess | null = null;
  private decoder: AnswerDecoder;
  private readonly inFlight = new Fifo<Job>();
  private readonly secrets: SecretMemory;
  private failures = 0;
  private wroteAnything = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | null = null;
  private exitWaiter: (() => void) | null = null;
  /** The last start attempt failed because the program could not be run at all. */
  startFailed = false;

  constructor(
    private readonly options: ScriptWorkerOptions,
    private readonly events: ScriptWorkerEvents,
  ) {
    this.decoder = options.codec.createDecoder();
    // Two entries a request (fields, password) for everything in flight and the last 1024
    // answered: a script's stderr can lag well behind its answers under load.
    this.secrets = new SecretMemory(2 * (options.depth + RECENT_REQUESTS_REDACTED));
  }

  get id(): number {
    return this.options.id;
  }

  get load(): number {
    return this.inFlight.length;
  }

  get accepting(): boolean {
    return this.state === 'ready' && this.process !== null && this.inFlight.length < this.options.depth;
  }

  get alive(): boolean {
    return this.state === 'ready' || this.state === 'starting';
  }

  /** A process is running and ready for requests. */
  get up(): boolean {
    return this.state === 'ready' && this.process !== null;
  }

  /** Restarts since the script last answered a request. */
  get failuresInARow(): number {
    return this.failures;
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'restarting') return;
    this.state = 'starting';
    const { command, launch, log } = this.options;
    this.decoder = this.options.codec.createDecoder();
    this.wroteAnything = false;
    const stderr = new StderrRelay({
      maxLineChars: 500,
      burst: 20,
      linesPerSecond: 5,
      redact: (line) => this.secrets.redact(line),
      emit: (line) => this.options.log.warn({ worker: this.id, scriptPid: proc.pid, stderr: line }, 'script stderr'),
      suppressed: (count) => this.options.log.warn({ worker: this.id, count }, 'script stderr lines suppressed (rate limit)'),
    });
    const proc: ScriptProcess = launch(command, {
      output: (chunk) => this.process === proc && this.onOutput(chunk),
      diagnostic: (chunk) => this.process === proc && stderr.push(chunk),
      exit: (exit) => {
        stderr.flush();
        if (this.process === proc) this.onExit(exit);
        this.exitWaiter?.();
      },
    });
    this.process = proc;
    log.debug({ worker: this.id, scriptPid: proc.pid }, 'script started');
    proc.ready.then(
      () => {
        if (this.process !== proc || this.state !== 'starting') return;
        this.state = 'ready';
        this.startFailed = false;
        this.events.capacity(this);
      },
      (error: Error) => {
        if (this.process !== proc) return;
        log.error({ worker: this.id, err: error.message }, 'script could not be prepared');
        this.replaceProcess('not ready');
      },
    );
  }

  /** Writes a request to the process. The pool only calls this while `accepting`. */
  assign(job: Job): void {
    const proc = this.process;
    if (!this.accepting || proc === null) throw new Error(`worker ${this.id} is not accepting`);
    // Remembered so that a script echoing them to stderr does not get them logged.
    this.secrets.remember(job.fields);
    if (job.request.password !== undefined) this.secrets.remember(job.request.password);
    // Each attempt on a script gets the full timeout, so a request moved off a hung process
    // is not doomed by the time it already spent there.
    job.deadline = performance.now() + this.options.timeoutMs;
    this.inFlight.push(job);
    if (job.deadline < this.timerAt) this.armTimer(job.deadline);
    proc.write(job.payload);
  }

  /** EOF, then SIGTERM, then SIGKILL; requests still held are answered with an error. */
  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closed = this.shutDown();
    return this.closed;
  }

  private async shutDown(): Promise<void> {
    const wasRunning = this.state === 'ready' || this.state === 'starting';
    this.state = 'closing';
    clearTimeout(this.restartTimer);
    this.disarmTimer();
    this.failAll(new Failure('stopping', 'the auth component is shutting down'));
    const proc = this.process;
    if (proc && wasRunning) {
      const exited = new Promise<void>((resolve) => (this.exitWaiter = resolve));
      proc.closeInput();
      if (!(await settlesWithin(exited, this.options.closeGraceMs))) {
        proc.kill('SIGTERM');
        if (!(await settlesWithin(exited, this.options.closeGraceMs))) {
          proc.kill('SIGKILL');
          await settlesWithin(exited, this.options.closeGraceMs);
        }
      }
      proc.detach();
    }
    this.process = null;
    this.state = 'closed';
  }

  private onOutput(chunk: Buffer): void {
    this.wroteAnything = true;
    if (this.inFlight.length === 0 && this.decoder.pending === 0) {
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid, bytes: chunk.length }, 'script wrote output while no request was outstanding; restarting it');
      this.replaceProcess('unsolicited output');
      return;
    }
    let verdict = 'ok' as Verdict;
    try {
      this.decoder.push(chunk, (answer) => {
        if (verdict === 'ok') verdict = this.onAnswer(answer);
      });
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid, problem: error.message }, 'script output is not valid protocol; restarting it');
      this.inFlight.shift()?.settle(new Failure('bad-answer', 'the auth script gave an answer that is neither 1 nor 0'));
      this.replaceProcess('protocol error');
      return;
    }
    if (verdict === 'unsolicited') {
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid }, 'script answered more often than it was asked; restarting it');
      this.replaceProcess('unsolicited answer');
      return;
    }
    if (verdict === 'invalid') {
      // What follows a line we did not understand cannot be trusted to belong to the next
      // request (an echoed request, then the real answer): start afresh.
      this.replaceProcess('invalid answer');
      return;
    }
    if (this.inFlight.length === 0) this.disarmTimer();
    if (this.accepting) this.events.capacity(this);
  }

  private onAnswer(answer: ScriptAnswer): Verdict {
    const job = this.inFlight.shift();
    if (job === undefined) return 'unsolicited';
    if (answer === 'invalid') {
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid, kind: job.request.kind }, 'script answered neither 1 nor 0; restarting it');
      job.settle(new Failure('bad-answer', 'the auth script gave an answer that is neither 1 nor 0'));
      return 'invalid';
    }
    this.failures = 0;
    job.settle(answer);
    return 'ok';
  }

  private onExit(exit: ScriptExit): void {
    const { log } = this.options;
    if (this.state === 'closing' || this.state === 'closed') return;
    if (exit.spawnError !== undefined) {
      this.startFailed = true;
      log.error({ worker: this.id, command: this.options.command.file, problem: exit.spawnError }, 'script cannot be started');
      this.failAll(new Failure('cannot-start', 'the auth script cannot be started'));
      // Lets the pool fail what waits for a process that may never come, instead of timing out.
      queueMicrotask(() => this.events.capacity(this));
      this.events.restarted?.('cannot-start');
    } else {
      log.warn({ worker: this.id, scriptPid: this.process?.pid, code: exit.code, signal: exit.signal, held: this.inFlight.length }, 'script exited');
      this.failAll(new Failure('crashed', 'the auth script exited before it answered'));
      this.events.restarted?.('exited');
    }
    // Helpers the script started may outlive it and hold its pipes: its group goes too.
    this.process?.kill('SIGKILL');
    this.process?.detach();
    this.process = null;
    this.scheduleRestart();
  }

  /**
   * Abandons the current process because its output can no longer be matched to requests.
   * Requests that changed nothing go back to the pool; the others cannot be known to have
   * failed or succeeded, so they get an error.
   */
  private replaceProcess(reason: string): void {
    const proc = this.process;
    this.process = null;
    // Not accepting from here on: the pool may hand stranded requests straight to a worker.
    if (this.state !== 'closing' && this.state !== 'closed') this.state = 'restarting';
    if (proc) {
      proc.kill('SIGKILL');
      proc.detach();
    }
    this.strandAll(reason);
    this.events.restarted?.(reason.replaceAll(' ', '-'));
    this.scheduleRestart();
  }

  private strandAll(reason: string): void {
    const retry: Job[] = [];
    for (const job of this.inFlight.drain()) {
      if (REQUEST_KINDS[job.request.kind].idempotent && !job.retried) retry.push(job);
      else job.settle(new Failure('crashed', `the auth script was restarted (${reason}) before it answered`));
    }
    this.disarmTimer();
    if (retry.length > 0) this.events.stranded(retry);
  }

  private failAll(error: Failure): void {
    for (const job of this.inFlight.drain()) job.settle(error);
    this.disarmTimer();
  }

  private scheduleRestart(): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.state = 'restarting';
    const delay = this.options.restartDelay(this.failures++);
    if (this.failures >= FAILING_AFTER_RESTARTS) {
      const problem = `the script keeps failing: restarted ${this.failures} times in a row without answering`;
      this.options.log.error({ worker: this.id, delayMs: delay, failuresInARow: this.failures, problem }, 'restarting script');
    } else {
      this.options.log.info({ worker: this.id, delayMs: delay }, 'restarting script');
    }
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.start(), delay);
  }

  // One timer per worker, armed for the earliest deadline it holds and re-armed lazily when it fires.
  private armTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.onTimer(), Math.max(1, Math.ceil(at - performance.now())));
  }

  private disarmTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }

  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.inFlight.length === 0) return;
    const now = performance.now();
    let earliest = Infinity;
    for (const job of this.inFlight) earliest = Math.min(earliest, job.deadline);
    if (earliest > now) {
      this.armTimer(earliest);
      return;
    }
    const { log, timeoutMs } = this.options;
    const expired: Job[] = [];
    const kept: Job[] = [];
    for (const job of this.inFlight.drain()) (job.deadline <= now ? expired : kept).push(job);
    for (const job of kept) this.inFlight.push(job);
    const pid = this.process?.pid;
    log.warn(
      { worker: this.id, scriptPid: pid, timedOut: expired.length, requeued: this.inFlight.length, timeoutMs, ...(this.wroteAnything ? {} : this.options.silentTimeoutHint ? { hint: this.options.silentTimeoutHint } : {}) },
      'script did not answer in time; killing it',
    );
    for (const job of expired) job.settle(new Failure('timeout', `the auth script did not answer within ${timeoutMs / 1000} s`));
    this.replaceProcess('timeout');
  }
}

function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
