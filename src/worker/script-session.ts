import type { Logger } from 'pino';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from '../codec/codec.js';
import { Failure } from '../core/failure.js';
import type { Job } from '../core/job.js';
import { ScramCredentials } from '../core/scram-credentials.js';
import { readAnswer } from '../codec/scram-answer.js';
import type { RestartReason } from '../core/restart.js';
import { maskKeyLike, type SecretMemory } from '../core/redaction.js';
import { type Entry, InFlight } from './in-flight.js';
import type { ScriptCommand, ScriptExit, ScriptLauncher, ScriptProcess } from './script-process.js';
import { STDERR_LIMITS, StderrRelay } from './stderr-relay.js';

export interface ScriptSessionOptions {
  /** The supervisor's id, for logs. */
  readonly worker: number;
  readonly command: ScriptCommand;
  readonly codec: ScriptCodec;
  readonly launch: ScriptLauncher;
  /** Requests the process may hold at once: 1 is lockstep. */
  readonly depth: number;
  /** How long the process may stay silent after a request was written before it counts as hung. */
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Shared with the supervisor's earlier sessions: a script's stderr can lag behind its answers. */
  readonly secrets: SecretMemory;
  /** Start with output not read (the reader downstream is congested). */
  readonly paused: boolean;
  /** Hint shown when a script over pipes never wrote anything before a timeout. */
  readonly silentTimeoutHint?: string | undefined;
}

/** What a session tells its supervisor. A session that is over tells it nothing more. */
export interface ScriptSessionEvents {
  /** The process is ready for requests. */
  ready(): void;
  /** The script answered a request: it works. */
  answered(): void;
  /** Tagged: an answer named an id that is not in flight; it was dropped and the process kept. */
  strayAnswer(): void;
  /** Something the process held was settled: it may take more, or hold nothing now. */
  progress(): void;
  /**
   * The session is over: the process exited, could not be started or prepared, or its output can
   * no longer be trusted (then it has been killed). What it held has been answered, except the
   * requests in `retry`, which changed nothing and may be tried on another process.
   */
  lost(reason: RestartReason, retry: Job[]): void;
}

/** What one answer says about the process: fine, or no longer to be trusted. */
type Trust = 'ok' | 'unsolicited' | 'invalid';

type State = 'starting' | 'ready' | 'closing' | 'over';

/**
 * One script process, from launch to exit: writes requests, matches answers to them (in order
 * for the classic protocols, by id for tagged), keeps each request's deadline and the process's
 * own allowance, and relays its stderr. It never outlives its process and is never reused:
 * once it reports `lost` or is closed it is over, and the process's late callbacks reach only it.
 *
 * Two clocks apply to a request. The requester's deadline (one per request, from its arrival) is
 * when it gets its timeout error. The process's allowance is the full timeout from the moment the
 * request was written: only a process that answers nothing for that long is killed, so a request
 * that waited in the queue cannot get a healthy process killed. Between the two, a timed-out
 * request keeps its place, so that its late answer is swallowed rather than read as the answer to
 * the next one (classic) or is recognised by its id (tagged).
 */
export class ScriptSession {
  private state: State = 'starting';
  private readonly process: ScriptProcess;
  private readonly decoder: AnswerDecoder;
  private readonly inFlight = new InFlight();
  private wroteAnything = false;
  private lastAnswerAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private pausedAt: number | null;
  private exited: (() => void) | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly options: ScriptSessionOptions,
    private readonly events: ScriptSessionEvents,
  ) {
    this.decoder = options.codec.createDecoder();
    this.pausedAt = options.paused ? performance.now() : null;
    const { log } = options;
    const stderr = new StderrRelay({
      ...STDERR_LIMITS,
      redact: (line) => options.secrets.redact(this.holdsScram() ? maskKeyLike(line) : line),
      emit: (redacted) => log.warn({ event: 'script.stderr', worker: options.worker, scriptPid: this.pid, stderr: redacted }, 'script stderr'),
      suppressed: (count) => log.warn({ event: 'script.stderr-suppressed', worker: options.worker, count }, 'script stderr lines suppressed (rate limit)'),
    });
    this.process = options.launch(options.command, {
      output: (chunk) => this.onOutput(chunk),
      diagnostic: (chunk) => stderr.push(chunk),
      exit: (exit) => {
        stderr.flush();
        this.onExit(exit);
      },
    });
    log.debug({ event: 'script.started', worker: options.worker, scriptPid: this.pid }, 'script started');
    this.process.ready.then(
      () => {
        if (this.state !== 'starting') return;
        // Not before: a pty's wrapper must still be read to know the terminal is ready.
        if (this.pausedAt !== null) this.process.pause();
        this.state = 'ready';
        this.events.ready();
      },
      (error: Error) => {
        if (this.state !== 'starting') return;
        log.error({ event: 'script.not-ready', worker: options.worker, err: error }, 'script could not be prepared');
        this.abandon('not-ready');
      },
    );
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Requests the process holds, including timed-out ones whose answers are still awaited. */
  get load(): number {
    return this.inFlight.size;
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  get accepting(): boolean {
    return this.state === 'ready' && this.inFlight.size < this.options.depth;
  }

  /** Writes a request to the process. Only while `accepting`. */
  assign(job: Job): void {
    if (!this.accepting) throw new Error(`worker ${this.options.worker} is not accepting`);
    // Remembered so that a script echoing them to stderr does not get them logged.
    this.options.secrets.remember(job.fields);
    if (job.request.password !== undefined) this.options.secrets.remember(job.request.password);
    this.inFlight.add(job, performance.now());
    // The requester's deadline, from its arrival, comes no later than this process's allowance.
    if (job.deadline < this.timerAt) this.armTimer(job.deadline);
    this.process.write(job.payload);
  }

  /** Stops reading the script's output until `resume()`. */
  pause(): void {
    if (this.pausedAt !== null) return;
    this.pausedAt = performance.now();
    // A pty still starting is read until it is ready, then paused.
    if (this.state !== 'starting') this.process.pause();
  }

  resume(): void {
    if (this.pausedAt === null) return;
    // Time spent not reading is not held against the process.
    const paused = performance.now() - this.pausedAt;
    this.pausedAt = null;
    for (const entry of this.inFlight.values()) entry.writtenAt += paused;
    this.process.resume();
    if (this.state === 'ready') this.rearm();
  }

  /** SIGKILL to the process group, at once and synchronously: the last resort on a forced exit. */
  killNow(): void {
    this.process.kill('SIGKILL');
  }

  /**
   * Fails what the process holds with `failure`, then EOF, SIGTERM and SIGKILL, each after
   * `graceMs` without an exit. The session is over; it reports nothing more.
   */
  close(failure: Failure, graceMs: number): Promise<void> {
    this.closing ??= this.shutDown(failure, graceMs);
    return this.closing;
  }

  private async shutDown(failure: Failure, graceMs: number): Promise<void> {
    const running = this.state === 'starting' || this.state === 'ready';
    this.state = 'closing';
    this.failAll(failure);
    const proc = this.process;
    if (running) {
      const exited = new Promise<void>((resolve) => (this.exited = resolve));
      proc.resume();
      proc.closeInput();
      if (!(await settlesWithin(exited, graceMs))) {
        proc.kill('SIGTERM');
        if (!(await settlesWithin(exited, graceMs))) {
          proc.kill('SIGKILL');
          await settlesWithin(exited, graceMs);
        }
      }
    }
    proc.detach();
    this.state = 'over';
  }

  private onOutput(chunk: Buffer): void {
    if (this.state === 'over' || this.state === 'closing') return;
    this.wroteAnything = true;
    const { log, codec, worker } = this.options;
    // With ids, output is judged line by line: an answer nobody waits for is dropped below.
    if (!codec.tagged && this.inFlight.size === 0 && this.decoder.pending === 0) {
      log.warn(
        { event: 'script.unsolicited', worker, scriptPid: this.pid, bytes: chunk.length },
        'script wrote output while no request was outstanding; restarting it',
      );
      return this.abandon('unsolicited-output');
    }
    let trust = 'ok' as Trust;
    try {
      this.decoder.push(chunk, (answer, id) => {
        if (trust === 'ok') trust = codec.tagged ? this.onTaggedAnswer(answer, id!) : this.onAnswer(answer);
      });
    } catch (error) {
      if (!(error instanceof FramingError)) throw error;
      log.warn({ event: 'script.protocol-error', worker, scriptPid: this.pid, problem: error.message }, 'script output is not valid protocol; restarting it');
      // In order, the oldest request is the one the garbage was meant to answer; with ids, none can be blamed.
      if (!codec.tagged) this.inFlight.settleOldest(new Failure('bad-answer', 'the auth script gave an answer that is neither 1 nor 0'));
      return this.abandon('protocol-error');
    }
    if (trust === 'ok' && !codec.tagged && this.inFlight.size === 0 && this.decoder.pending > 0) {
      // The start of another answer right behind the last one expected: an extra answer.
      trust = 'unsolicited';
    }
    if (trust === 'unsolicited') {
      log.warn({ event: 'script.unsolicited', worker, scriptPid: this.pid }, 'script answered more often than it was asked; restarting it');
      return this.abandon('unsolicited-output');
    }
    // What follows a line we did not understand cannot be trusted to belong to the next
    // request (an echoed request, then the real answer): start afresh.
    if (trust === 'invalid') return this.abandon('bad-answer');
    // The timer may now be early for what is left; it re-arms itself when it fires.
    if (this.inFlight.size === 0) this.disarmTimer();
    this.events.progress();
  }

  /** Classic protocols: the answer belongs to the oldest request on the process. */
  private onAnswer(answer: ScriptAnswer): Trust {
    const entry = this.inFlight.takeOldest();
    if (entry === undefined) return 'unsolicited';
    return this.deliver(entry, answer === 'backend-error' ? 'invalid' : answer);
  }

  private onTaggedAnswer(answer: ScriptAnswer, id: string): Trust {
    const entry = this.inFlight.take(id);
    if (entry !== undefined) return this.deliver(entry, answer);
    // A line that is no answer at all says the script lost track: restart. An answer for an id
    // nobody waits for (a second answer, one after its timeout, a made-up id) can answer no one,
    // since every request has its own id: drop it and keep the process, whose other requests
    // are fine. Only the id is logged: the rest of the line may hold secrets.
    if (answer === 'invalid') return 'invalid';
    // Still a sign of life: a process that answers is not hung.
    this.lastAnswerAt = performance.now();
    const where = { worker: this.options.worker, scriptPid: this.pid, answerId: id };
    if (this.inFlight.takeForgotten(id)) this.options.log.warn({ event: 'script.late-answer', ...where }, 'late answer to a timed-out request ignored');
    else this.options.log.warn({ event: 'script.stray-answer', ...where }, 'script answered a request id that is not in flight; answer dropped');
    this.events.strayAnswer();
    return 'ok';
  }

  /** A scram request is held: the script may print its keys before the answer that makes them known. */
  private holdsScram(): boolean {
    for (const entry of this.inFlight.values()) if (entry.job.request.kind === 'scram') return true;
    return false;
  }

  private deliver(entry: Entry, raw: ScriptAnswer): Trust {
    const { job } = entry;
    const { log, worker } = this.options;
    this.lastAnswerAt = performance.now();
    const answer = readAnswer(job.request, raw);
    if (answer === 'invalid') {
      // A malformed answer's keys are as secret as good ones: masked if the script prints them later.
      if (typeof raw === 'object') for (const part of raw.credentials.split(':')) if (part.length >= 16) this.options.secrets.rememberBinary(part);
      log.warn({ event: 'script.bad-answer', worker, scriptPid: this.pid, kind: job.request.kind }, 'script answered neither 1 nor 0; restarting it');
      const what = job.request.kind === 'scram' ? 'neither 0 nor valid SCRAM credentials' : 'neither 1 nor 0';
      if (!entry.expired) job.settle(new Failure('bad-answer', `the auth script gave an answer that is ${what}`));
      return 'invalid';
    }
    // The keys are as secret as a password: a script that prints them on stderr gets them masked.
    if (answer instanceof ScramCredentials) for (const key of [answer.storedKey, answer.serverKey]) this.options.secrets.rememberBinary(key);
    this.events.answered();
    if (entry.expired) {
      log.debug({ event: 'script.late-answer', worker, scriptPid: this.pid, kind: job.request.kind }, 'late answer to a timed-out request ignored');
      return 'ok';
    }
    if (answer === 'backend-error') {
      log.warn({ event: 'script.backend-error', worker, scriptPid: this.pid, kind: job.request.kind }, 'script reported that its backend failed');
      job.settle(new Failure('backend-error', 'the auth script reported that its backend failed'));
    } else job.settle(answer);
    return 'ok';
  }

  private onExit(exit: ScriptExit): void {
    if (this.state === 'closing' || this.state === 'over') {
      this.exited?.();
      return;
    }
    const { log, worker } = this.options;
    this.state = 'over';
    this.disarmTimer();
    // Helpers the script started may outlive it and hold its pipes: its group goes too.
    this.process.kill('SIGKILL');
    this.process.detach();
    if (exit.spawnError !== undefined) {
      log.error({ event: 'script.cannot-start', worker, command: this.options.command.file, problem: exit.spawnError }, 'script cannot be started');
      this.failAll(new Failure('cannot-start', 'the auth script cannot be started'));
      return this.events.lost('cannot-start', []);
    }
    const { requeued, failed } = this.inFlight.counts();
    const held = requeued + failed;
    log.warn({ event: 'script.exited', worker, scriptPid: this.pid, code: exit.code, signal: exit.signal, held }, 'script exited');
    this.failAll(new Failure('crashed', 'the auth script exited before it answered'));
    this.events.lost('exited', []);
  }

  /**
   * Gives up on the process because its output can no longer be matched to requests. Requests
   * that changed nothing are handed back for another process; the others cannot be known to have
   * failed or succeeded, so they get an error.
   */
  private abandon(reason: RestartReason): void {
    this.state = 'over';
    this.disarmTimer();
    this.process.kill('SIGKILL');
    this.process.detach();
    const retry = this.inFlight.strand(new Failure('crashed', `the auth script was restarted (${reason}) before it answered`));
    this.events.lost(reason, retry);
  }

  private failAll(failure: Failure): void {
    this.inFlight.failAll(failure);
    this.disarmTimer();
  }

  /** When the entry needs attention next: its requester's deadline, or the end of the process's allowance. */
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

  // One timer per process, armed for the earliest time something it holds is due.
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
    const { log, timeoutMs, codec, worker } = this.options;
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
        this.inFlight.forget(entry);
      } else hung = true;
    }
    if (expired > 0)
      log.debug({ event: 'query.timeout', worker, scriptPid: this.pid, timedOut: expired, timeoutMs }, 'requests timed out waiting for the script');
    if (hung) {
      const { silentTimeoutHint } = this.options;
      const hint = !this.wroteAnything && silentTimeoutHint ? { hint: silentTimeoutHint } : {};
      log.warn(
        { event: 'script.hung', worker, scriptPid: this.pid, ...this.inFlight.counts(), timeoutMs, ...hint },
        'script did not answer in time; killing it',
      );
      return this.abandon('timeout');
    }
    this.rearm();
    this.events.progress();
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
