import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { FakeXmppServer, nextId } from '../support/fake-server.js';
import { errorOf, FIXTURE, resultOf, runToExit, SECRET, startHarness, waitForRecord, type Harness } from './harness.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'extauth-config-'));
const notExecutable = path.join(scratch, 'auth-script.txt');
writeFileSync(notExecutable, 'not a program\n', { mode: 0o644 });

const base = { XMPP_DOMAIN: 'auth.example.com', XMPP_SECRET: 's', EXTERNAL_AUTH_COMMAND: FIXTURE, XMPP_SERVICE: 'xmpp://127.0.0.1:9' };

describe('startup and configuration', () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('--help lists every variable with its default; --version prints the version', async () => {
    const help = await runToExit({}, ['--help']);
    assert.equal(help.code, 0);
    for (const name of [
      'XMPP_SERVICE',
      'XMPP_DOMAIN',
      'XMPP_SECRET',
      'EXTERNAL_AUTH_COMMAND',
      'EXTERNAL_AUTH_PROTOCOL',
      'EXTERNAL_AUTH_TIMEOUT',
      'EXTERNAL_AUTH_PROCESSES',
      'EXTERNAL_AUTH_BLOCKING',
      'EXTERNAL_AUTH_ALLOW',
      'LOG_LEVEL',
    ]) {
      assert.match(help.stdout, new RegExp(`^  ${name} +default: `, 'm'), name);
    }
    assert.match(help.stdout, /xmpp:\/\/localhost:5347/);
    const version = await runToExit({}, ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  const bad: Array<[string, Record<string, string | undefined>]> = [
    ['XMPP_DOMAIN', { XMPP_DOMAIN: undefined }],
    ['XMPP_SECRET', { XMPP_SECRET: undefined }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: undefined }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: '/nonexistent/auth-script --flag' }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: 'no-such-program-anywhere' }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: "'unterminated" }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: notExecutable }],
    ['EXTERNAL_AUTH_COMMAND', { EXTERNAL_AUTH_COMMAND: scratch }],
    ['EXTERNAL_AUTH_PROTOCOL', { EXTERNAL_AUTH_PROTOCOL: 'prosody' }],
    ['EXTERNAL_AUTH_TIMEOUT', { EXTERNAL_AUTH_TIMEOUT: 'soon' }],
    ['EXTERNAL_AUTH_TIMEOUT', { EXTERNAL_AUTH_TIMEOUT: '0' }],
    ['EXTERNAL_AUTH_PROCESSES', { EXTERNAL_AUTH_PROCESSES: '0' }],
    ['EXTERNAL_AUTH_BLOCKING', { EXTERNAL_AUTH_BLOCKING: 'sometimes' }],
    ['EXTERNAL_AUTH_ALLOW', { EXTERNAL_AUTH_ALLOW: 'example.com/resource' }],
    ['XMPP_SERVICE', { XMPP_SERVICE: 'http://localhost:5347' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'chatty' }],
  ];
  for (const [variable, change] of bad) {
    test(`a bad ${variable} (${JSON.stringify(change)}) exits non-zero with one line naming it, before connecting`, async () => {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...base, ...change })) if (v !== undefined) env[k] = v;
      const result = await runToExit(env);
      assert.notEqual(result.code, 0);
      const lines = result.stderr.trim().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.ok(lines[0]!.includes(variable), lines[0]);
      assert.equal(result.stdout, '', 'nothing started, nothing logged');
    });
  }

  test('every configuration error at once, with a warning for a misspelt variable', async () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...base, EXTERNAL_AUTH_COMMAND: undefined, EXTERNAL_AUTH_COMMAN: '/bin/true', LOG_LEVEL: 'chatty' }))
      if (v !== undefined) env[k] = v;
    const result = await runToExit(env);
    assert.equal(result.code, 2);
    const lines = result.stderr.trim().split('\n');
    assert.ok(
      lines.some((line) => line.includes('EXTERNAL_AUTH_COMMAN ') && line.includes('did you mean EXTERNAL_AUTH_COMMAND')),
      result.stderr,
    );
    assert.ok(
      lines.some((line) => line.startsWith('extauth-component: EXTERNAL_AUTH_COMMAND:')),
      result.stderr,
    );
    assert.ok(
      lines.some((line) => line.startsWith('extauth-component: LOG_LEVEL:')),
      result.stderr,
    );
    assert.equal(result.stdout, '', 'nothing started, nothing logged');
  });

  test('a command path with spaces, quoted, is run without a shell', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'extauth dir '));
    try {
      const script = path.join(dir, 'my script.sh');
      writeFileSync(
        script,
        '#!/bin/sh\n# answers 1 to everything; $1 proves the argument arrived whole\n[ "$1" = "one arg" ] || exit 9\nwhile read -r line; do echo 1; done\n',
      );
      chmodSync(script, 0o755);
      const h = await startHarness({ command: `'${script}' "one arg"` });
      try {
        assert.equal(resultOf(await h.ask({ user: 'a', password: 'x' })), 'true');
      } finally {
        await h.cleanup();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a script that disappears after startup answers internal-server-error, and recovers when it is back', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'extauth-vanish-'));
    const script = path.join(dir, 'auth.sh');
    const body = '#!/bin/sh\nwhile read -r line; do case "$line" in auth:crash:*) exit 1;; esac; echo 1; done\n';
    writeFileSync(script, body);
    chmodSync(script, 0o755);
    const h = await startHarness({ command: script });
    try {
      assert.equal(resultOf(await h.ask({ user: 'a', password: 'x' })), 'true');
      rmSync(script);
      assert.equal(errorOf(await h.ask({ user: 'crash', password: 'x' })).condition, 'internal-server-error');
      const reply = await h.ask({ user: 'a', password: 'x' });
      // Not remote-server-timeout: it failed as soon as the script could not be started.
      assert.deepEqual(errorOf(reply), { type: 'wait', condition: 'internal-server-error', text: 'the auth script cannot be started' });
      await h.waitForLog((l) => l.event === 'script.cannot-start');
      writeFileSync(script, body);
      chmodSync(script, 0o755);
      let result: string | undefined;
      for (let i = 0; i < 40 && result !== 'true'; i++) {
        result = resultOf(await h.ask({ user: 'a', password: 'x' }));
        if (result !== 'true') await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.equal(result, 'true');
    } finally {
      await h.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('connection and lifecycle', () => {
  test('a UTF-8 character split across two TCP reads arrives intact', async () => {
    const h = await startHarness();
    try {
      const password = 'good-😀-ü-€';
      const id = nextId();
      const stanza = Buffer.from(
        `<iq type='get' id='${id}' from='example.com' to='auth.example.com'><auth xmlns='urn:x-extauth:0' user='zoë'>${password}</auth></iq>`,
      );
      const emoji = stanza.indexOf(Buffer.from('😀'));
      const reply = h.server.request('', id);
      h.server.writeRaw(stanza.subarray(0, emoji + 2));
      // Not ordering but two separate TCP reads: nothing observable says the first has been read.
      await new Promise((resolve) => setTimeout(resolve, 100));
      h.server.writeRaw(stanza.subarray(emoji + 2));
      assert.equal(resultOf(await reply), 'true');
      const last = h.records().at(-1)!;
      assert.equal(last.password, password);
      assert.equal(last.user, 'zoë');
    } finally {
      await h.cleanup();
    }
  });

  test('a lost connection is re-established with backoff, logging each try', async () => {
    const h = await startHarness();
    try {
      h.server.dropConnection();
      await h.waitForLog((l) => l.event === 'link.lost');
      await h.server.waitOnline();
      assert.ok(h.server.connections >= 2);
      assert.equal(resultOf(await h.ask({ user: 'a', password: 'good' })), 'true');
      // A refused handshake is retried too, with growing delays.
      h.server.refuseHandshake = 'not-authorized';
      h.server.dropConnection();
      await h.waitForLog((l) => l.event === 'link.failed' && /XMPP_SECRET/.test(String(l.reason)));
      h.server.refuseHandshake = null;
      await h.server.waitOnline(15_000);
      const delays = h
        .logs()
        .filter((l) => l.event === 'link.reconnecting')
        .map((l) => l.delayMs as number);
      assert.ok(delays.length >= 2, `${delays}`);
      assert.ok(delays.every((d) => d <= 30_000));
    } finally {
      await h.cleanup();
    }
  });

  test('the component waits for a server that is not up yet', async () => {
    const probe = new FakeXmppServer(SECRET);
    const port = await probe.listen();
    await probe.close();
    const h = await startHarness({ port, waitOnline: false });
    try {
      await h.waitForLog((l) => l.event === 'link.failed');
      const revived = new FakeXmppServer(SECRET);
      await revived.listen(port);
      try {
        await revived.waitOnline(15_000);
      } finally {
        await revived.close();
      }
    } finally {
      await h.cleanup();
    }
  });

  test('SIGTERM finishes requests in flight, refuses new ones, closes the scripts and the stream, exits 0', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROCESSES: '2' } });
    try {
      const inFlight = [h.ask({ user: 'slow1500', password: 'good' }), h.ask({ user: 'slow1500', password: 'bad' })];
      await waitForRecord(h, (r) => r.user === 'slow1500' && r.password === 'bad');
      await waitForRecord(h, (r) => r.user === 'slow1500' && r.password === 'good');
      const exit = h.stop('SIGTERM');
      await h.waitForLog((l) => l.event === 'component.stopping');
      // Both are still being worked on: a new request is refused, and it does get a reply.
      const late = await h.ask({ user: 'alice', password: 'good' });
      assert.equal(errorOf(late).condition, 'service-unavailable');
      assert.deepEqual((await Promise.all(inFlight)).map(resultOf), ['true', 'false']);
      assert.equal(await exit, 0);
      assert.ok(h.server.rawReceived.join('').includes('</stream:stream>'), 'the stream was closed');
      const pids = h
        .logs()
        .filter((l) => l.event === 'script.started')
        .map((l) => l.scriptPid as number);
      assert.equal(pids.length, 2);
      for (const pid of pids) assert.throws(() => process.kill(pid, 0), 'script process is gone');
    } finally {
      await h.cleanup();
    }
  });

  test('a script that ignores EOF and SIGTERM is killed at shutdown', async () => {
    const h = await startHarness({ command: `/bin/sh -c 'trap "" TERM; while :; do read -r line && echo 1; done'` });
    try {
      assert.equal(resultOf(await h.ask({ user: 'a', password: 'x' })), 'true');
      const pid = h.logs().find((l) => l.event === 'script.started')!.scriptPid as number;
      assert.equal(await h.stop('SIGINT'), 0);
      assert.throws(() => process.kill(pid, 0));
    } finally {
      await h.cleanup();
    }
  });

  test('a second signal kills every script process group at once, even scripts that ignore EOF and SIGTERM', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROCESSES: '2' }, command: IGNORES_EOF_AND_TERM });
    try {
      const pids = await scriptPids(h, 2);
      assert.equal(resultOf(await h.ask({ user: 'a', password: 'x' })), 'true');
      h.child.kill('SIGTERM');
      await h.waitForLog((l) => l.event === 'component.stopping');
      // Shutdown now waits for the scripts to give up (EOF, then SIGTERM after a grace period).
      assert.equal(await h.stop('SIGTERM'), 1);
      assert.ok(h.logs().some((l) => l.event === 'component.killed'));
      for (const pid of pids) await waitUntilGone(pid);
    } finally {
      await h.cleanup();
    }
  });

  test('SIGHUP replaces every script process under load without failing a request', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROCESSES: '2' } });
    try {
      const before = await scriptPids(h, 2);
      let rolled = false;
      let asked = 0;
      const results: Array<Promise<[string, string | undefined, string | undefined]>> = [];
      // Eight clients, each asking again as soon as it has its answer, until the restart is done.
      const client = async (n: number) => {
        while (!rolled) {
          const password = (asked++ + n) % 2 ? 'good' : 'bad';
          const reply = h.ask({ user: 'slow20', password });
          const outcome = reply.then((r): [string, string | undefined, string | undefined] => [password, resultOf(r), errorOf(r).condition]);
          results.push(outcome);
          await outcome;
        }
      };
      const clients = Array.from({ length: 8 }, (_, n) => client(n));
      await waitForRecord(h, (r) => r.user === 'slow20');
      h.child.kill('SIGHUP');
      await h.waitForLog((l) => l.event === 'rolling.done', 20_000);
      rolled = true;
      await Promise.all(clients);
      const outcomes = await Promise.all(results);
      for (const [password, result, condition] of outcomes) {
        assert.equal(condition, undefined, 'no request failed');
        assert.equal(result, password === 'good' ? 'true' : 'false');
      }
      const replaced = h.logs().filter((l) => l.event === 'rolling.switched');
      assert.deepEqual(replaced.map((l) => l.oldPid).sort(), [...before].sort());
      const after = replaced.map((l) => l.newPid as number);
      for (const pid of after) assert.ok(!before.includes(pid), 'a new process');
      // Under load: old processes still held requests when they were retired, and answered them;
      // new ones took requests while the restart went on.
      assert.ok(
        replaced.some((l) => (l.held as number) >= 1),
        'an old process held a request when it was taken out of rotation',
      );
      assert.equal(h.logs().filter((l) => l.event === 'rolling.retiring').length, 2);
      const loadPids = new Set(
        h
          .records()
          .filter((r) => r.user === 'slow20')
          .map((r) => r.pid as number),
      );
      assert.ok(
        [...loadPids].some((pid) => after.includes(pid)),
        'the load moved to the new processes',
      );
      assert.ok(
        [...loadPids].some((pid) => before.includes(pid)),
        'and had been on the old ones',
      );
      for (const pid of before) await waitUntilGone(pid);
      // The new processes answer.
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
      assert.ok(after.includes(h.records().at(-1)!.pid as number));
      assert.equal(await h.stop('SIGTERM'), 0);
    } finally {
      await h.cleanup();
    }
  });
});

const IGNORES_EOF_AND_TERM = `/bin/sh -c 'trap "" TERM HUP; while :; do read -r line && echo 1; done'`;

async function scriptPids(h: Harness, count: number): Promise<number[]> {
  await h.waitForLog(() => h.logs().filter((l) => l.event === 'script.started').length >= count);
  return h
    .logs()
    .filter((l) => l.event === 'script.started')
    .map((l) => l.scriptPid as number);
}

/** Gone, or a zombie nobody has reaped yet (its parent exited without waiting for it). */
function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /s, '')
      .startsWith('Z');
  } catch {
    return true;
  }
}

async function waitUntilGone(pid: number, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!isGone(pid)) {
    if (Date.now() - started > timeoutMs) throw new Error(`script process ${pid} is still running`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
