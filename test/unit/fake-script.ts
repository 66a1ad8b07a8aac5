// A scripted stand-in for script processes, a Job factory and a log that can be read back:
// what the ScriptWorker and ScriptPool unit tests drive the state machines with.
import { mock } from 'node:test';
import pino, { type Logger } from 'pino';
import type { AuthRequest, RequestKind } from '../../src/core/auth-request.js';
import type { Outcome } from '../../src/core/failure.js';
import type { ScriptCodec } from '../../src/codec/codec.js';
import { requestFields } from '../../src/codec/request-fields.js';
import type { Job } from '../../src/pool/job.js';
import type { ScriptCommand, ScriptExit, ScriptProcess, ScriptProcessHandlers } from '../../src/worker/script-process.js';

export const COMMAND: ScriptCommand = { file: '/fake/auth-script', args: [], env: {} };

let nextPid = 1000;

export interface FakeBehaviour {
  /** Exits when its input is closed (a well-behaved script). Default true. */
  exitOnEof?: boolean;
  /** Exits on SIGTERM. Default true. */
  exitOnTerm?: boolean;
  /** `ready` waits for `becomeReady()` (a pty being switched to raw mode). Default false. */
  manualReady?: boolean;
}

export class FakeProcess implements ScriptProcess {
  readonly pid = nextPid++;
  readonly ready: Promise<void>;
  readonly written: Buffer[] = [];
  readonly signals: NodeJS.Signals[] = [];
  inputClosed = false;
  paused = false;
  detached = false;
  exited = false;
  private resolveReady!: () => void;
  private rejectReady!: (error: Error) => void;

  constructor(
    readonly handlers: ScriptProcessHandlers,
    private readonly behaviour: FakeBehaviour,
  ) {
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    if (!behaviour.manualReady) this.resolveReady();
  }

  becomeReady(): void {
    this.resolveReady();
  }

  failReady(message: string): void {
    this.rejectReady(new Error(message));
  }

  /** Everything written to the script so far, as text lines (without their newlines). */
  lines(): string[] {
    const text = Buffer.concat(this.written).toString('utf8');
    return text === '' ? [] : text.replace(/\n$/, '').split('\n');
  }

  /** The script writes to its stdout. */
  say(text: string | Buffer): void {
    if (this.detached || this.exited) throw new Error('a fake process that is gone cannot write');
    this.handlers.output(typeof text === 'string' ? Buffer.from(text) : text);
  }

  exit(exit: ScriptExit = { code: 0, signal: null }): void {
    if (this.exited) return;
    this.exited = true;
    if (!this.detached) this.handlers.exit(exit);
  }

  write(bytes: Buffer): void {
    this.written.push(bytes);
  }

  closeInput(): void {
    this.inputClosed = true;
    if (this.behaviour.exitOnEof !== false) queueMicrotask(() => this.exit());
  }

  kill(signal: NodeJS.Signals): void {
    this.signals.push(signal);
    if (signal === 'SIGKILL' || (signal === 'SIGTERM' && this.behaviour.exitOnTerm !== false)) {
      queueMicrotask(() => this.exit({ code: null, signal }));
    }
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  detach(): void {
    this.detached = true;
  }
}

/** Launches fake processes and keeps them all, in launch order. */
export class FakeLauncher {
  readonly processes: FakeProcess[] = [];
  behaviour: FakeBehaviour = {};
  /** When set, launches fail like a program that cannot be run (ENOENT). */
  spawnError: string | null = null;

  readonly launch = (_command: ScriptCommand, handlers: ScriptProcessHandlers): ScriptProcess => {
    if (this.spawnError !== null) {
      const spawnError = this.spawnError;
      const failed = new FakeProcess(handlers, this.behaviour);
      this.processes.push(failed);
      queueMicrotask(() => failed.exit({ code: null, signal: null, spawnError }));
      return failed;
    }
    const proc = new FakeProcess(handlers, this.behaviour);
    this.processes.push(proc);
    return proc;
  };

  get last(): FakeProcess {
    const proc = this.processes.at(-1);
    if (!proc) throw new Error('nothing launched yet');
    return proc;
  }

  /** Processes not killed, detached or exited. */
  get running(): FakeProcess[] {
    return this.processes.filter((p) => !p.exited && !p.detached);
  }
}

export interface TestJob extends Job {
  outcome: Outcome | undefined;
  settledAt: number | undefined;
  settleCount: number;
}

export function request(kind: RequestKind, user = 'alice', password = 'secret-pw'): AuthRequest {
  if (kind === 'scram') return { kind, user, server: 'example.com', hash: 'sha-256' };
  const carries = kind === 'auth' || kind === 'setpass' || kind === 'tryregister';
  return carries ? { kind, user, server: 'example.com', password } : { kind, user, server: 'example.com' };
}

let nextTag = 0;

/** A job as the pool would make it, with a deadline `timeoutMs` after `arrivedAt`. */
export function makeJob(codec: ScriptCodec, req: AuthRequest, deadline: number): TestJob {
  const fields = requestFields(req);
  const tag = codec.tagged ? `t${(nextTag++).toString(36)}` : undefined;
  const job: TestJob = {
    request: req,
    fields,
    tag,
    payload: codec.encode(fields, tag),
    deadline,
    retried: false,
    outcome: undefined,
    settledAt: undefined,
    settleCount: 0,
    settle(outcome) {
      job.settleCount++;
      if (job.settleCount > 1) return;
      job.outcome = outcome;
      job.settledAt = performance.now();
    },
  };
  return job;
}

/** A pino logger whose lines can be read back. */
export function captureLog(): { log: Logger; lines: Array<Record<string, unknown>>; messages: () => string[] } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'trace' }, { write: (text: string) => void lines.push(JSON.parse(text) as Record<string, unknown>) });
  return { log, lines, messages: () => lines.map((l) => String(l.msg)) };
}

/**
 * Fake time for setTimeout, Date and performance.now(), moved only by `tick`. Returns the
 * function that undoes it.
 */
export function useFakeTime(): () => void {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  const now = mock.method(performance, 'now', () => Date.now());
  return () => {
    now.mock.restore();
    mock.timers.reset();
  };
}

/** Moves fake time on by `ms`, letting promise callbacks run between timers. */
export async function tick(ms = 0): Promise<void> {
  await settle();
  mock.timers.tick(ms);
  await settle();
}

/** Lets queued microtasks and promise callbacks run (real setImmediate is not faked). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
