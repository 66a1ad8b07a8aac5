// Runs a bench module in a Node process of its own (so load generators never share a CPU
// timeline with what they measure) and talks to it over the IPC channel in typed messages.
import { fork, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT_FROM_BENCH = resolve(BENCH_DIR, '..');

/** Messages every child may send: it has loaded (`ready`), or something went wrong on its side. */
export type ChildStatus = { type: 'failed'; message: string } | { type: 'ready' };

export class BenchChild<In, Out extends { type: string }> {
  private readonly inbox: Out[] = [];
  private waiter: (() => void) | null = null;
  private exitReason: string | null = null;
  private stderr = '';
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.on('message', (message: Out) => {
      this.inbox.push(message);
      this.waiter?.();
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      this.exitReason = signal ? `signal ${signal}` : `code ${code}`;
      process.off('exit', this.killOnExit);
      this.waiter?.();
    });
    process.once('exit', this.killOnExit);
  }

  /** Forks `bench/<module>.ts` under tsx with the given arguments. */
  static start<In, Out extends { type: string }>(module: string, args: string[] = [], label = module): BenchChild<In, Out> {
    const child = fork(resolve(BENCH_DIR, module), args, {
      cwd: REPO_ROOT_FROM_BENCH,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced', // typed arrays and the like pass as they are
    });
    return new BenchChild<In, Out>(child, label);
  }

  /** Waits until the child has loaded and listens to the parent (it sends `ready`). */
  async ready(timeoutMs = 30_000): Promise<this> {
    await this.next('ready' as Out['type'], timeoutMs);
    return this;
  }

  get pid(): number {
    return this.child.pid!;
  }

  send(message: In): void {
    this.child.send(message as object);
  }

  /**
   * The next message of the given type; messages of other types are handed to `onOther`
   * (progress reports) and dropped. Rejects when the child fails, exits, or the time runs out.
   */
  async next<T extends Out['type']>(type: T, timeoutMs: number, onOther?: (message: Out) => void): Promise<Extract<Out, { type: T }>> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      while (this.inbox.length > 0) {
        const message = this.inbox.shift()!;
        if (message.type === type) return message as Extract<Out, { type: T }>;
        if (message.type === 'failed') throw new Error(`${this.label}: ${(message as unknown as { message: string }).message}`);
        onOther?.(message);
      }
      if (this.exitReason !== null) throw new Error(`${this.label} exited (${this.exitReason}) before sending "${type}"${this.stderrTail()}`);
      const remaining = deadline - performance.now();
      if (remaining <= 0) throw new Error(`${this.label}: no "${type}" within ${Math.round(timeoutMs)} ms${this.stderrTail()}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, remaining);
        this.waiter = () => {
          clearTimeout(timer);
          wake();
        };
      });
      this.waiter = null;
    }
  }

  /** Ends the child (SIGTERM, SIGKILL after a second) and waits for it. */
  async stop(): Promise<void> {
    if (this.exitReason !== null) return;
    const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(timer);
  }

  private stderrTail(): string {
    return this.stderr ? `\n--- stderr ---\n${this.stderr}` : '';
  }
}

/**
 * The child side: handles each message from the parent with `handle`, reports a thrown error as
 * a `failed` message, and exits when the parent goes away.
 */
export function serveParent<In>(handle: (message: In) => Promise<void> | void): void {
  if (!process.send) throw new Error('this module runs as a bench child (forked with an IPC channel)');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (message: In) => {
    Promise.resolve()
      .then(() => handle(message))
      .catch((error: unknown) => reply({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }));
  });
  reply({ type: 'ready' });
}

/** Sends a message to the parent. */
export function reply<M extends { type: string }>(message: M): void {
  process.send!(message);
}
