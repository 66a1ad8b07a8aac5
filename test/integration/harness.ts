import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Element } from '@xmpp/xml';
import { authIq, FakeXmppServer, nextId, withTimeout } from '../support/fake-server.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MAIN = path.join(ROOT, 'dist/main.js');
export const FIXTURE = path.join(ROOT, 'test/fixtures/scripts/fixture.mjs');
export const LIST_FDS = path.join(ROOT, 'test/fixtures/scripts/list-fds.py');
export const SECRET = 'component-secret-Zq9';

export interface Harness {
  readonly server: FakeXmppServer;
  readonly child: ChildProcess;
  readonly dir: string;
  readonly recordFile: string;
  /** Every line the component wrote to stdout and stderr so far. */
  output(): string;
  logs(): Array<Record<string, unknown>>;
  records(): Array<Record<string, unknown>>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Sends an auth-namespace query and resolves with the reply. */
  ask(o: Parameters<typeof authIq>[0] extends infer T ? Omit<T & object, 'id'> : never): Promise<Element>;
  /** SIGTERM (or the given signal), then resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  cleanup(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  scriptArgs?: string[];
  command?: string | ((recordFile: string) => string);
  waitOnline?: boolean;
  server?: FakeXmppServer;
  /** Connect to this port (where nothing may listen yet) instead of the harness's own server. */
  port?: number;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  if (!existsSync(MAIN)) throw new Error('dist/main.js is missing: run npm run build');
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-it-'));
  const recordFile = path.join(dir, 'record.jsonl');
  const server = options.server ?? new FakeXmppServer(SECRET);
  const port = options.port ?? (options.server ? server.port : await server.listen());
  const command = typeof options.command === 'function' ? options.command(recordFile) : options.command ?? `${FIXTURE} --record ${recordFile} ${(options.scriptArgs ?? []).join(' ')}`;
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      XMPP_SERVICE: `xmpp://127.0.0.1:${port}`,
      XMPP_DOMAIN: 'auth.example.com',
      XMPP_SECRET: SECRET,
      EXTERNAL_AUTH_COMMAND: command,
      EXTERNAL_AUTH_TIMEOUT: '2',
      LOG_LEVEL: 'debug',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text));
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (out += text));
  const exited = once(child, 'exit');

  const logs = () =>
    out
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  const harness: Harness = {
    server,
    child,
    dir,
    recordFile,
    output: () => out,
    logs,
    records: () =>
      existsSync(recordFile)
        ? readFileSync(recordFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Record<string, unknown>)
        : [],
    async waitForLog(predicate, timeoutMs = 10_000) {
      const started = Date.now();
      for (;;) {
        const found = logs().find(predicate);
        if (found) return found;
        if (Date.now() - started > timeoutMs) throw new Error(`log line not seen; output so far:\n${out}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    ask(o) {
      const id = nextId();
      return server.request(authIq({ id, ...o }), id);
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await withTimeout(exited, 15_000, 'component did not exit')) as [number | null];
      return code;
    },
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (options.waitOnline !== false) {
    try {
      await server.waitOnline();
    } catch (error) {
      await harness.cleanup();
      throw new Error(`${(error as Error).message}; output:\n${out}`);
    }
  }
  return harness;
}

export function resultOf(reply: Element): string | undefined {
  return reply.getChildElements()[0]?.attrs.result;
}

export function errorOf(reply: Element): { type?: string; condition?: string; text?: string } {
  const error = reply.getChild('error');
  if (!error) return {};
  const condition = error.getChildElements().find((el) => el.name !== 'text');
  return { type: error.attrs.type, condition: condition?.name, text: error.getChildText('text') ?? undefined };
}

/** Runs the component to completion with the given environment (for startup errors). */
export async function runToExit(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  try {
    const [code] = (await withTimeout(once(child, 'exit'), 15_000, 'component did not exit')) as [number | null];
    return { code, stdout, stderr };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** Resolves with the first line the fixture script recorded that matches. */
export async function waitForRecord(h: Harness, predicate: (record: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const started = Date.now();
  for (;;) {
    const found = h.records().find(predicate);
    if (found) return found;
    if (Date.now() - started > timeoutMs) throw new Error(`record not seen; records so far:\n${JSON.stringify(h.records())}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
