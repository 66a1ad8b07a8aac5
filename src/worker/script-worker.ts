import type { Logger } from 'pino';
import { REQUEST_KINDS } from '../core/auth-request.js';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from '../codec/codec.js';
import { Failure } from '../core/failure.js';
import { ScramCredentials } from '../core/scram-credentials.js';
import { readAnswer } from '../codec/scram-answer.js';
import type { Job } from '../pool/job.js';
import type { ScriptCommand, ScriptExit, ScriptLauncher, ScriptProcess } from './script-process.js';
import { maskKeyLike, SecretMemory, StderrRelay } from './stderr-relay.js';

export interface ScriptWorkerOptions {
  readonly id: number;
  readonly command: ScriptCommand;
  readonly codec: ScriptCodec;
  readonly launch: ScriptLauncher;
  /** Requests one process may hold at once: 1 is lockstep. */
  readonly depth: number;
  /**
   * How long a process may take to answer a request written to it before it counts as hung
   * and is killed. The requester's own deadline (on the job) may come sooner.
   */
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly restartDelay: (failures: number) => number;
  /** Shutdown: how long to wait after EOF, then after SIGTERM, before the next step. */
  readonly closeGraceMs: number;
  /** Hint shown when a script over pipes never wrote anything before a timeout. */
  readonly silentTimeoutHint?: string;
}

/** Why a process was replaced: a small fixed set, fit for a metric label. */
export type RestartReason =
  /** The process exited on its own. */
  | 'exited'
  /** It held a request for the whole timeout without answering anything. */
  | 'timeout'
  /** It wrote while no request was outstanding (a banner, an extra answer). */
  | 'unsolicited-output'
  /** It answered something that is not an answer. */
  | 'bad-answer'
  /** Its output could not be split into answers at all. */
  | 'protocol-error'
  /** It could not be prepared (a pty that never switched to raw mode). */
  | 'not-ready'
  /** The program could not be run at all. */
  | 'cannot-start'
  /** Replaced on purpose by a rolling restart (counted by the pool). */
  | 'rolling';

export interface ScriptWorkerEvents {
  /** The worker can take more requests, or could not start: either way the pool should look again. */
  capacity(worker: ScriptWorker): void;
  /** Requests that were on a lost process and may safely be tried on another. */
  stranded(jobs: Job[]): void;
  /** The worker is replacing its process. */
  restarted?(reason: RestartReason): void;
  /** Tagged: an answer named an id that is not in flight; it was dropped and the process kept. */
  strayAnswer?(): void;
}

/** Restarts in a row without an answer from which a script counts as failing (logged at error, unhealthy). */
export const FAILING_AFTER_RESTARTS = 3;

/** How many answered requests stay remembered for redacting the script's stderr. */
const RECENT_REQUESTS_REDACTED = 1024;
/** Tagged: how many ids of timed-out requests are remembered so that a late answer's warning can say so. */
const FORGOTTEN_IDS_REMEMBERED = 4096;

/** What one answer says about the process: fine, or no longer to be trusted. */
type Verdict = 'ok' | 'unsolicited' | 'invalid';

type State = 'idle' | 'starting' | 'ready' | 'restarting' | 'closing' | 'closed';

/** A request written to the current process. */
interface Entry {
  readonly job: Job;
  readonly key: string | number;
  /** performance.now() when written, moved on by the time output was paused. */
  writtenAt: number;
  /** The requester has had its timeout; the entry stays to catch the script's late answer. */
  expired: boolean;
}

/**
 * Owns one script process at a time: writes requests, matches answers to them (in order for
 * the classic protocols, by id for tagged), enforces deadlines, and replaces the process
 * whenever its answers can no longer be trusted (hung, garbage, unsolicited output) or it exits.
 *
 * Two clocks apply to a request on a process. The requester's deadline (one per request, from
 * its arrival) is when it gets its timeout error. The process's own allowance is the full
 * timeout from the moment the request was written: only a process that answers nothing for
 * that long is killed, so a request that waited in the queue cannot get a healthy process
 * killed. Between the two, a timed-out request keeps its place, so that its late answer is
 * swallowed rather than read as the answer to the next one (classic) or is recognised by its
 * id (tagged).
 */
export class ScriptWorker {
  private state: State = 'idle';
  private process: ScriptProcess | null = null;
  private decoder: AnswerDecoder;
  /** In write order; keyed by request id (tagged) or a counter (classic). */
  private readonly inFlight = new Map<string | number, Entry>();
  private nextKey = 0;
  /** Tagged: ids of requests dropped after their timeout; a late answer to one is told apart in the log. */
  private readonly forgotten = new Set<string>();
  private readonly secrets: SecretMemory;
  private failures = 0;
  private wroteAnything = false;
  private lastAnswerAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private restartTimer: NodeJS.Timeout | undefined;
  private closed: Promise<void> | null = null;
  private exitWaiter: (() => void) | null = null;
  private readyWaiters: Array<(ok: boolean) => void> = [];
  private provenWaiters: Array<(ok: boolean) => void> = [];
  private retiring = false;
  /** Set while retiring: closes the worker once its process holds nothing more. */
  private retired: (() => void) | null = null;
  private pausedAt: number | null = null;
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

  /** Requests the process holds, including timed-out ones whose answers are still awaited. */
  get load(): number {
    return this.inFlight.size;
  }

  get accepting(): boolean {
    return this.state === 'ready' && !this.retiring && this.process !== null && this.inFlight.size < this.options.depth;
  }

  get alive(): boolean {
    return this.state === 'ready' || this.state === 'starting';
  }

  /** A process is running and ready for requests. */
  get up(): boolean {
    return this.state === 'ready' && this.process !== null;
  }

  get pid(): number | undefined {
    return this.process?.pid;
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
    this.lastAnswerAt = -Infinity;
    this.forgotten.clear();
    const stderr = new StderrRelay({
      maxLineChars: 500,
      burst: 20,
      linesPerSecond: 5,
      redact: (line) => this.secrets.redact(this.holdsScram() ? maskKeyLike(line) : line),
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
        // Not before: a pty's wrapper must still be read to know the terminal is ready.
        if (this.pausedAt !== null) proc.pause();
        this.state = 'ready';
        this.startFailed = false;
        this.announceStart(true);
        this.events.capacity(this);
      },
      (error: Error) => {
        if (this.process !== proc) return;
        log.error({ worker: this.id, err: error }, 'script could not be prepared');
        this.replaceProcess('not-ready');
      },
    );
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
    const proc = this.process;
    if (!this.accepting || proc === null) throw new Error(`worker ${this.id} is not accepting`);
    // Remembered so that a script echoing them to stderr does not get them logged.
    this.secrets.remember(job.fields);
    if (job.request.password !== undefined) this.secrets.remember(job.request.password);
    const key = job.tag ?? this.nextKey++;
    const writtenAt = performance.now();
    this.inFlight.set(key, { job, key, writtenAt, expired: false });
    // The requester's deadline, from its arrival, comes no later than this process's allowance.
    if (job.deadline < this.timerAt) this.armTimer(job.deadline);
    proc.write(job.payload);
  }

  /** Stops reading the script's output until `resume()` (the reader downstream is congested). */
  pause(): void {
    if (this.pausedAt !== null) return;
    this.pausedAt = performance.now();
    this.process?.pause();
  }

  resume(): void {
    if (this.pausedAt === null) return;
    // Time spent not reading is not held against the process.
    const paused = performance.now() - this.pausedAt;
    this.pausedAt = null;
    for (const entry of this.inFlight.values()) entry.writtenAt += paused;
    this.process?.resume();
    this.rearm();
  }

  /**
   * Takes no more requests, lets the process answer those it holds, then closes it (EOF,
   * SIGTERM, SIGKILL). Used to replace a process without failing anything.
   */
  retire(): Promise<void> {
    this.retiring = true;
    clearTimeout(this.restartTimer);
    this.announceStart(false);
    if (this.inFlight.size === 0 || !this.up) return this.close();
    return new Promise((resolve) => (this.retired = () => resolve(this.close())));
  }

  /** SIGKILL to the process group, at once and synchronously: the last resort on a forced exit. */
  killNow(): void {
    this.process?.kill('SIGKILL');
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
    this.announceStart(false);
    this.announceProven(false);
    this.settleRetirement();
    const proc = this.process;
    if (proc && wasRunning) {
      const exited = new Promise<void>((resolve) => (this.exitWaiter = resolve));
      proc.resume();
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

  private announceProven(ok: boolean): void {
    for (const finish of [...this.provenWaiters]) finish(ok);
  }

  private announceStart(ok: boolean): void {
    if (this.readyWaiters.length === 0) return;
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const resolve of waiters) resolve(ok);
  }

  /** A scram request is held: the script may print its keys before the answer that makes them known. */
  private holdsScram(): boolean {
    for (const entry of this.inFlight.values()) if (entry.job.request.kind === 'scram') return true;
    return false;
  }

  /** A retiring worker whose process holds nothing more closes. */
  private settleRetirement(): void {
    if (this.retired === null || this.inFlight.size > 0) return;
    const close = this.retired;
    this.retired = null;
    close();
  }

  private onOutput(chunk: Buffer): void {
    this.wroteAnything = true;
    const { log, codec } = this.options;
    // With ids, output is judged line by line: an answer nobody waits for is dropped below.
    if (!codec.tagged && this.inFlight.size === 0 && this.decoder.pending === 0) {
      log.warn({ worker: this.id, scriptPid: this.process?.pid, bytes: chunk.length }, 'script wrote output while no request was outstanding; restarting it');
      this.replaceProcess('unsolicited-output');
      return;
    }
    let verdict = 'ok' as Verdict;
    try {
      this.decoder.push(chunk, (answer, id) => {
        if (verdict === 'ok') verdict = codec.tagged ? this.onTaggedAnswer(answer, id!) : this.onAnswer(answer);
      });
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      log.warn({ worker: this.id, scriptPid: this.process?.pid, problem: error.message }, 'script output is not valid protocol; restarting it');
      // In order, the oldest request is the one the garbage was meant to answer; with ids, none can be blamed.
      if (!codec.tagged) this.settleOldest(new Failure('bad-answer', 'the auth script gave an answer that is neither 1 nor 0'));
      this.replaceProcess('protocol-error');
      return;
    }
    if (verdict === 'ok' && !codec.tagged && this.inFlight.size === 0 && this.decoder.pending > 0) {
      // The start of another answer right behind the last one expected: an extra answer.
      verdict = 'unsolicited';
    }
    if (verdict === 'unsolicited') {
      log.warn({ worker: this.id, scriptPid: this.process?.pid }, 'script answered more often than it was asked; restarting it');
      this.replaceProcess('unsolicited-output');
      return;
    }
    if (verdict === 'invalid') {
      // What follows a line we did not understand cannot be trusted to belong to the next
      // request (an echoed request, then the real answer): start afresh.
      this.replaceProcess('bad-answer');
      return;
    }
    // The timer may now be early for what is left; it re-arms itself when it fires.
    if (this.inFlight.size === 0) this.disarmTimer();
    this.settleRetirement();
    if (this.accepting) this.events.capacity(this);
  }

  /** Classic protocols: the answer belongs to the oldest request on the process. */
  private onAnswer(answer: ScriptAnswer): Verdict {
    const first = this.inFlight.values().next();
    if (first.done) return 'unsolicited';
    const entry = first.value;
    this.inFlight.delete(entry.key);
    return this.deliver(entry, answer === 'backend-error' ? 'invalid' : answer);
  }

  private onTaggedAnswer(answer: ScriptAnswer, id: string): Verdict {
    const entry = this.inFlight.get(id);
    if (entry === undefined) {
      // A line that is no answer at all says the script lost track: restart. An answer for an
      // id nobody waits for (a second answer, one after its timeout, a made-up id) can answer
      // no one, since every request has its own id: drop it and keep the process, whose other
      // requests are fine. Only the id is logged: the rest of the line may hold secrets.
      if (answer === 'invalid') return 'invalid';
      // Still a sign of life: a process that answers is not hung.
      this.lastAnswerAt = performance.now();
      const where = { worker: this.id, scriptPid: this.process?.pid, answerId: id };
      if (this.forgotten.delete(id)) this.options.log.warn(where, 'late answer to a timed-out request ignored');
      else this.options.log.warn(where, 'script answered a request id that is not in flight; answer dropped');
      this.events.strayAnswer?.();
      return 'ok';
    }
    this.inFlight.delete(id);
    return this.deliver(entry, answer);
  }

  private deliver(entry: Entry, raw: ScriptAnswer): Verdict {
    const { job } = entry;
    this.lastAnswerAt = performance.now();
    const answer = readAnswer(job.request, raw);
    if (answer === 'invalid') {
      // A malformed answer's keys are as secret as good ones: masked if the script prints them later.
      if (typeof raw === 'object') for (const part of raw.credentials.split(':')) if (part.length >= 16) this.secrets.rememberBinary(part);
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid, kind: job.request.kind }, 'script answered neither 1 nor 0; restarting it');
      const what = job.request.kind === 'scram' ? 'neither 0 nor valid SCRAM credentials' : 'neither 1 nor 0';
      if (!entry.expired) job.settle(new Failure('bad-answer', `the auth script gave an answer that is ${what}`));
      return 'invalid';
    }
    // The keys are as secret as a password: a script that prints them on stderr gets them masked.
    if (answer instanceof ScramCredentials) for (const key of [answer.storedKey, answer.serverKey]) this.secrets.rememberBinary(key);
    this.failures = 0;
    this.announceProven(true);
    if (entry.expired) {
      this.options.log.debug({ worker: this.id, scriptPid: this.process?.pid, kind: job.request.kind }, 'late answer to a timed-out request ignored');
      return 'ok';
    }
    if (answer === 'backend-error') {
      this.options.log.warn({ worker: this.id, scriptPid: this.process?.pid, kind: job.request.kind }, 'script reported that its backend failed');
      job.settle(new Failure('backend-error', 'the auth script reported that its backend failed'));
    } else job.settle(answer);
    return 'ok';
  }

  private settleOldest(failure: Failure): void {
    for (const entry of this.inFlight.values()) {
      if (entry.expired) continue;
      this.inFlight.delete(entry.key);
      entry.job.settle(failure);
      return;
    }
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
    } else {
      log.warn({ worker: this.id, scriptPid: this.process?.pid, code: exit.code, signal: exit.signal, held: this.liveCount() }, 'script exited');
      this.failAll(new Failure('crashed', 'the auth script exited before it answered'));
    }
    // Helpers the script started may outlive it and hold its pipes: its group goes too.
    this.process?.kill('SIGKILL');
    this.process?.detach();
    this.process = null;
    this.scheduleRestart(exit.spawnError !== undefined ? 'cannot-start' : 'exited');
  }

  /**
   * Abandons the current process because its output can no longer be matched to requests.
   * Requests that changed nothing go back to the pool; the others cannot be known to have
   * failed or succeeded, so they get an error.
   */
  private replaceProcess(reason: RestartReason): void {
    const proc = this.process;
    this.process = null;
    // Not accepting from here on: the pool may hand stranded requests straight to a worker.
    if (this.state !== 'closing' && this.state !== 'closed') this.state = 'restarting';
    if (proc) {
      proc.kill('SIGKILL');
      proc.detach();
    }
    this.strandAll(reason);
    this.scheduleRestart(reason);
  }

  private strandAll(reason: RestartReason): void {
    const retry: Job[] = [];
    for (const { job, expired } of this.inFlight.values()) {
      if (expired) continue;
      if (REQUEST_KINDS[job.request.kind].idempotent && !job.retried) retry.push(job);
      else job.settle(new Failure('crashed', `the auth script was restarted (${reason}) before it answered`));
    }
    this.inFlight.clear();
    this.disarmTimer();
    if (retry.length > 0) this.events.stranded(retry);
  }

  private failAll(error: Failure): void {
    for (const { job, expired } of this.inFlight.values()) if (!expired) job.settle(error);
    this.inFlight.clear();
    this.disarmTimer();
  }

  /** What a replacement will do with the requests the process holds: retry them elsewhere, or fail them. */
  private heldCounts(): { requeued: number; failed: number } {
    let requeued = 0;
    let failed = 0;
    for (const { job, expired } of this.inFlight.values()) {
      if (expired) continue;
      if (REQUEST_KINDS[job.request.kind].idempotent && !job.retried) requeued++;
      else failed++;
    }
    return { requeued, failed };
  }

  private liveCount(): number {
    let count = 0;
    for (const entry of this.inFlight.values()) if (!entry.expired) count++;
    return count;
  }

  private scheduleRestart(reason: RestartReason): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.announceStart(false);
    this.announceProven(false);
    if (this.retiring) {
      // Being replaced anyway: what it held has been answered or handed back.
      this.state = 'restarting';
      this.settleRetirement();
      return;
    }
    this.state = 'restarting';
    this.events.restarted?.(reason);
    const delay = this.options.restartDelay(this.failures++);
    if (this.failures >= FAILING_AFTER_RESTARTS) {
      const problem = `the script keeps failing: restarted ${this.failures} times in a row without answering`;
      this.options.log.error({ worker: this.id, delayMs: delay, reason, failuresInARow: this.failures, problem }, 'restarting script');
    } else {
      this.options.log.info({ worker: this.id, delayMs: delay, reason }, 'restarting script');
    }
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => this.start(), delay);
  }

  /** When the next entry needs attention: its requester's deadline, or the end of the process's allowance. */
  private dueAt(entry: Entry): number {
    if (!entry.expired) return entry.job.deadline;
    // While output is paused the process's allowance stands still: looked at again on resume.
    return this.pausedAt === null ? entry.writtenAt + this.options.timeoutMs : Infinity;
  }

  private rearm(): void {
    let earliest = Infinity;
    for (const entry of this.inFlight.values()) earliest = Math.min(earliest, this.dueAt(entry));
    if (earliest === Infinity) this.disarmTimer();
    else if (earliest !== this.timerAt) this.armTimer(earliest);
  }

  // One timer per worker, armed for the earliest time something it holds is due.
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
    const now = performance.now();
    const { log, timeoutMs, codec } = this.options;
    let expired = 0;
    let hung = false;
    for (const entry of this.inFlight.values()) {
      if (!entry.expired) {
        if (entry.job.deadline > now) continue;
        entry.expired = true;
        expired++;
        entry.job.settle(new Failure('timeout', `the auth script did not answer within ${timeoutMs / 1000} s`));
      }
      if (entry.writtenAt + timeoutMs > now || this.pausedAt !== null) continue;
      // A whole timeout since it was written. With ids, a process that answered anything
      // since is alive (one slow request in its backend): forget the id, keep the process.
      if (codec.tagged && this.lastAnswerAt > entry.writtenAt) {
        this.inFlight.delete(entry.key);
        this.forget(entry.key as string);
      } else hung = true;
    }
    if (expired > 0) log.debug({ worker: this.id, scriptPid: this.process?.pid, timedOut: expired, timeoutMs }, 'requests timed out waiting for the script');
    if (hung) {
      log.warn(
        {
          worker: this.id,
          scriptPid: this.process?.pid,
          ...this.heldCounts(),
          timeoutMs,
          ...(this.wroteAnything ? {} : this.options.silentTimeoutHint ? { hint: this.options.silentTimeoutHint } : {}),
        },
        'script did not answer in time; killing it',
      );
      this.replaceProcess('timeout');
      return;
    }
    this.rearm();
    this.settleRetirement();
    if (this.accepting) this.events.capacity(this);
  }

  private forget(id: string): void {
    this.forgotten.add(id);
    if (this.forgotten.size > FORGOTTEN_IDS_REMEMBERED) this.forgotten.delete(this.forgotten.values().next().value!);
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
