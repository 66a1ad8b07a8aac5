// Runs the built component (`node dist/main.js`) as a child process, for the integration and
// end-to-end tests, the demo and the benchmarks: configured through its environment, its JSON log
// lines collected and awaited by predicate, stopped with SIGTERM (SIGKILL after a grace period).
// It never outlives the process that started it, even when a test gives up on it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep } from './wait.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const MAIN_JS = resolve(REPO_ROOT, 'dist/main.js');

/** How long after its exit a component's output pipes may stay open (held by a stray descendant). */
const PIPE_CLOSE_GRACE_MS = 2_000;

export interface SpawnOptions {
  /** The whole environment (PATH is added when missing). */
  env: Record<string, string>;
  /** Command-line arguments, e.g. `--help`. */
  args?: string[];
  /** Name used in error messages. */
  label?: string;
  /** Another build's entry point instead of this checkout's dist/main.js (the bench's baseline). */
  main?: string;
}

export interface ComponentOptions {
  /** XMPP_SERVICE, e.g. `xmpp://127.0.0.1:5347`. */
  service: string;
  /** XMPP_DOMAIN, e.g. `auth.localhost`. */
  domain: string;
  /** XMPP_SECRET. */
  secret: string;
  /** EXTERNAL_AUTH_COMMAND. */
  command: string;
  protocol?: 'generic' | 'ejabberd';
  /** Any other variables (EXTERNAL_AUTH_TIMEOUT, EXTERNAL_AUTH_PROCESSES, LOG_LEVEL, ...) and extras for the script. */
  env?: Record<string, string>;
  /** How long start() waits for the stream to be authenticated. Default 15 s. */
  connectTimeoutMs?: number;
  /**
   * Fallback readiness check, polled while waiting in case the "connected" log line never comes
   * (e.g. a login through the server). Resolve true when the component evidently serves.
   */
  probe?: () => Promise<boolean>;
  /** Name used in error messages. */
  label?: string;
  /** Another build's entry point instead of this checkout's dist/main.js (the bench's baseline). */
  main?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export class ComponentProcess {
  /** Parsed JSON log lines from stdout, in order. */
  readonly logLines: LogLine[] = [];
  /** Lines of stdout that were not JSON. */
  readonly otherStdout: string[] = [];
  /** Everything written to stdout so far. */
  stdout = '';
  stderr = '';
  /** Resolves once the process has exited and its output has been read to the end. */
  readonly exited: Promise<ExitStatus>;
  private exitStatus: ExitStatus | null = null;
  private closed = false;
  /** stdout and stderr interleaved as they arrived. */
  private combined = '';
  private readonly waiters = new Set<() => void>();
  private readonly killOnExit = () => this.child.kill('SIGKILL');

  private constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    let pending = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      this.combined += chunk;
      pending += chunk;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        this.addLine(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      this.combined += chunk;
    });
    child.on('exit', (code, signal) => {
      this.exitStatus = { code, signal };
      process.off('exit', this.killOnExit);
      // 'close' follows once the pipes are read to the end; don't wait for a descendant holding them.
      setTimeout(() => {
        child.stdout!.destroy();
        child.stderr!.destroy();
      }, PIPE_CLOSE_GRACE_MS).unref();
    });
    this.exited = new Promise((resolveExit) => {
      child.on('close', (code, signal) => {
        if (pending) this.addLine(pending);
        this.exitStatus ??= { code, signal };
        this.closed = true;
        this.notify();
        resolveExit(this.exitStatus);
      });
    });
    process.once('exit', this.killOnExit);
  }

  /** Starts `node dist/main.js` with exactly this environment (plus PATH); does not wait for anything. */
  static spawn(options: SpawnOptions): ComponentProcess {
    const main = options.main ?? MAIN_JS;
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env };
    const child = spawn(process.execPath, [main, ...(options.args ?? [])], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new ComponentProcess(child, options.label ?? 'component');
  }

  /** Starts `node dist/main.js` and waits until its stream to the server is authenticated. */
  static async start(options: ComponentOptions): Promise<ComponentProcess> {
    const component = ComponentProcess.spawn({
      label: options.label ?? options.domain,
      ...(options.main ? { main: options.main } : {}),
      env: {
        XMPP_SERVICE: options.service,
        XMPP_DOMAIN: options.domain,
        XMPP_SECRET: options.secret,
        EXTERNAL_AUTH_COMMAND: options.command,
        EXTERNAL_AUTH_PROTOCOL: options.protocol ?? 'generic',
        LOG_LEVEL: 'info',
        ...options.env,
      },
    });
    try {
      await component.waitConnected(options.connectTimeoutMs ?? 15_000, options.probe);
    } catch (error) {
      await component.kill();
      throw error;
    }
    return component;
  }

  /**
   * Runs the component to its end (`--help`, a configuration error...) and resolves with its exit
   * code and output. A component still running after `timeoutMs` is killed and the run fails.
   */
  static async run(options: SpawnOptions, timeoutMs = 15_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const component = ComponentProcess.spawn(options);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      component.child.kill('SIGKILL');
    }, timeoutMs);
    const { code } = await component.exited.finally(() => clearTimeout(timer));
    if (timedOut) throw component.failure(`did not exit within ${timeoutMs} ms; killed it`);
    return { code, stdout: component.stdout, stderr: component.stderr };
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  /** stdout and stderr as they arrived, interleaved. */
  output(): string {
    return this.combined;
  }

  /** Resolves with the first log line (seen so far or later) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs: number, what = 'a matching log line', signal?: AbortSignal): Promise<LogLine> {
    return this.waitForLogs((lines) => lines.find(match), timeoutMs, what, signal);
  }

  /**
   * Resolves with what `check` returns once it returns something other than undefined; `check`
   * is given the log lines so far, and asked again on each new one.
   */
  waitForLogs<T>(check: (lines: readonly LogLine[]) => T | undefined, timeoutMs: number, what = 'the expected log lines', signal?: AbortSignal): Promise<T> {
    return new Promise((resolveLine, reject) => {
      const recheck = () => {
        let found: T | undefined;
        try {
          found = check(this.logLines);
        } catch (error) {
          return done(() => reject(error));
        }
        if (found !== undefined) return done(() => resolveLine(found));
        if (this.closed) return done(() => reject(this.failure(`exited (${describeExit(this.exitStatus!)}) before ${what}`)));
      };
      const abort = () => done(() => reject(new Error(`stopped waiting for ${what}`)));
      const timer = setTimeout(() => done(() => reject(this.failure(`no ${what} within ${timeoutMs} ms`))), timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(recheck);
        signal?.removeEventListener('abort', abort);
        settle();
      };
      signal?.addEventListener('abort', abort);
      this.waiters.add(recheck);
      recheck();
    });
  }

  /** Waits for the "connected" log line; `probe`, when given, is polled as a fallback. */
  async waitConnected(timeoutMs: number, probe?: () => Promise<boolean>): Promise<void> {
    const what = '"connected" log line';
    if (!probe) {
      await this.waitForLog((line) => line.event === 'link.connected', timeoutMs, what);
      return;
    }
    const stop = new AbortController();
    const connected = this.waitForLog((line) => line.event === 'link.connected', timeoutMs, what, stop.signal);
    connected.catch(() => {});
    const probing = (async () => {
      while (!stop.signal.aborted && this.running) {
        if (await probe().catch(() => false)) return;
        await sleep(250);
      }
      await connected; // the log wait decides
    })();
    try {
      await Promise.race([connected, probing]);
    } finally {
      stop.abort();
    }
  }

  /** Sends `signal` (SIGTERM by default), then SIGKILL after graceMs. Resolves with the exit status. */
  async stop(graceMs = 10_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> {
    if (this.exitStatus) return this.exited;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: the instance dies without closing its stream. */
  async kill(): Promise<ExitStatus> {
    if (this.exitStatus) return this.exited;
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** The log as text, for assertion messages and secret checks. */
  logText(): string {
    return [...this.logLines.map((line) => JSON.stringify(line)), ...this.otherStdout].join('\n');
  }

  /** An error naming this component, with the tail of its output. */
  failure(message: string): Error {
    const tail = this.logText().split('\n').slice(-15).join('\n');
    return new Error(`component ${this.label}: ${message}\n--- stdout (tail) ---\n${tail}\n--- stderr ---\n${this.stderr.slice(-2000)}`);
  }

  private addLine(text: string): void {
    if (!text.trim()) return;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object') this.logLines.push(parsed as LogLine);
      else this.otherStdout.push(text);
    } catch {
      this.otherStdout.push(text);
    }
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `code ${status.code}`;
}

export function startComponent(options: ComponentOptions): Promise<ComponentProcess> {
  return ComponentProcess.start(options);
}
