// The component against the in-process fake XEP-0114 server, with the fixture script recording
// what it was asked: the integration tier's way to run `node dist/main.js`.
import { existsSync, mkdtempSync, readFileSync, rmSync, watch } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Element } from '@xmpp/xml';
import { ComponentProcess, MAIN_JS, REPO_ROOT } from '../../support/component-process.js';
import { authIq, FakeXmppServer, nextId } from '../support/fake-server.js';

export const ROOT = REPO_ROOT;
export const MAIN = MAIN_JS;
export const FIXTURE = path.join(ROOT, 'test/fixtures/scripts/fixture.mjs');
export const LIST_FDS = path.join(ROOT, 'test/fixtures/scripts/list-fds.py');
export const SECRET = 'component-secret-Zq9';
/** How long stop() waits for the component to exit before it kills it and fails. */
const STOP_TIMEOUT_MS = 15_000;

export interface Harness {
  readonly server: FakeXmppServer;
  readonly component: ComponentProcess;
  readonly child: ChildProcess;
  readonly dir: string;
  readonly recordFile: string;
  /** Every line the component wrote to stdout and stderr so far. */
  output(): string;
  logs(): Array<Record<string, unknown>>;
  records(): Array<Record<string, unknown>>;
  waitForLog(predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves once `check` holds for the log lines so far (asked again on each new line). */
  waitForLogs(check: (lines: ReadonlyArray<Record<string, unknown>>) => boolean, timeoutMs?: number): Promise<void>;
  /** Sends an auth-namespace query and resolves with the reply. */
  ask(o: Parameters<typeof authIq>[0] extends infer T ? Omit<T & object, 'id'> : never): Promise<Element>;
  /**
   * SIGTERM (or the given signal), then resolves with the exit code. A component still running
   * after 15 s is killed and the call fails.
   */
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
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-it-'));
  const recordFile = path.join(dir, 'record.jsonl');
  const server = options.server ?? new FakeXmppServer(SECRET);
  let component: ComponentProcess;
  try {
    const port = options.port ?? (options.server ? server.port : await server.listen());
    const command =
      typeof options.command === 'function'
        ? options.command(recordFile)
        : (options.command ?? `${FIXTURE} --record ${recordFile} ${(options.scriptArgs ?? []).join(' ')}`);
    component = ComponentProcess.spawn({
      env: {
        XMPP_SERVICE: `xmpp://127.0.0.1:${port}`,
        XMPP_DOMAIN: 'auth.example.com',
        XMPP_SECRET: SECRET,
        EXTERNAL_AUTH_COMMAND: command,
        EXTERNAL_AUTH_TIMEOUT: '2',
        LOG_LEVEL: 'debug',
        ...options.env,
      },
    });
  } catch (error) {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const harness: Harness = {
    server,
    component,
    child: component.child,
    dir,
    recordFile,
    output: () => component.output(),
    logs: () => [...component.logLines],
    records: () =>
      existsSync(recordFile)
        ? readFileSync(recordFile, 'utf8')
            .split('\n')
            .slice(0, -1) // whole lines only: the script may be writing the last one
            .filter(Boolean)
            .map((line) => JSON.parse(line) as Record<string, unknown>)
        : [],
    waitForLog: (predicate, timeoutMs = 10_000) => component.waitForLog(predicate, timeoutMs),
    async waitForLogs(check, timeoutMs = 10_000) {
      await component.waitForLogs((lines) => (check(lines) ? true : undefined), timeoutMs);
    },
    ask(o) {
      const id = nextId();
      return server.request(authIq({ id, ...o }), id);
    },
    async stop(signal = 'SIGTERM') {
      const status = await component.stop(STOP_TIMEOUT_MS, signal);
      if (status.signal === 'SIGKILL' && signal !== 'SIGKILL') throw component.failure(`did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}; killed it`);
      return status.code;
    },
    async cleanup() {
      await component.kill();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (options.waitOnline !== false) {
    try {
      await server.waitOnline();
    } catch (error) {
      await harness.cleanup();
      throw new Error(`${(error as Error).message}; output:\n${component.output()}`);
    }
  }
  return harness;
}

export function resultOf(reply: Element): string | undefined {
  return reply.getChildElements()[0]?.attrs.result;
}

export function errorOf(reply: Element): { type?: string | undefined; condition?: string | undefined; text?: string | undefined } {
  const error = reply.getChild('error');
  if (!error) return {};
  const condition = error.getChildElements().find((el) => el.name !== 'text');
  return { type: error.attrs.type, condition: condition?.name, text: error.getChildText('text') ?? undefined };
}

/** Runs the component to completion with the given environment (for startup errors). */
export function runToExit(env: Record<string, string>, args: string[] = []): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return ComponentProcess.run({ env, args });
}

/** Resolves with the first line the fixture script recorded that matches. */
export async function waitForRecord(h: Harness, predicate: (record: Record<string, unknown>) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  let found: Record<string, unknown> | undefined;
  await waitForFile(h, h.recordFile, () => (found = h.records().find(predicate)) !== undefined, timeoutMs);
  return found!;
}

/** Resolves once `check` holds for the records the fixture script wrote so far. */
export async function waitForRecords(h: Harness, check: (records: Array<Record<string, unknown>>) => boolean, timeoutMs = 10_000): Promise<void> {
  await waitForFile(h, h.recordFile, () => check(h.records()), timeoutMs);
}

/**
 * Resolves with the text of `file` (in the harness's temp dir) once `check` holds for it; looked
 * at again whenever something in that directory changes.
 */
export function waitForFile(h: Harness, file: string, check: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
  const read = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  return new Promise((resolve, reject) => {
    const watcher = watch(h.dir);
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      watcher.close();
      settle();
    };
    const look = () => {
      try {
        const text = read();
        if (check(text)) finish(() => resolve(text));
      } catch (error) {
        finish(() => reject(error));
      }
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`${path.basename(file)} never held what was expected; it holds:\n${read()}`))), timeoutMs);
    watcher.on('change', look);
    watcher.on('error', (error) => finish(() => reject(error)));
    look();
  });
}
