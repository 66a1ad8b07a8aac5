import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { FakeXmppServer, nextId } from '../support/fake-server.js';
import { errorOf, FIXTURE, resultOf, runToExit, SECRET, startHarness } from './harness.js';

const scratch = mkdtempSync(path.join(tmpdir(), 'extauth-config-'));
const notExecutable = path.join(scratch, 'auth-script.txt');
writeFileSync(notExecutable, 'not a program\n', { mode: 0o644 });

const base = { XMPP_DOMAIN: 'auth.example.com', XMPP_SECRET: 's', EXTERNAL_AUTH_COMMAND: FIXTURE, XMPP_SERVICE: 'xmpp://127.0.0.1:9' };

describe('startup and configuration (CONTRACT §1, §2)', () => {
  after(() => rmSync(scratch, { recursive: true, force: true }));

  test('--help lists every variable with its default; --version prints the version', async () => {
    const help = await runToExit({}, ['--help']);
    assert.equal(help.code, 0);
    for (const name of ['XMPP_SERVICE', 'XMPP_DOMAIN', 'XMPP_SECRET', 'EXTERNAL_AUTH_COMMAND', 'EXTERNAL_AUTH_PROTOCOL', 'EXTERNAL_AUTH_TIMEOUT', 'EXTERNAL_AUTH_PROCESSES', 'EXTERNAL_AUTH_BLOCKING', 'EXTERNAL_AUTH_ALLOW', 'LOG_LEVEL']) {
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

  test('a command path with spaces, quoted, is run without a shell', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'extauth dir '));
    try {
      const script = path.join(dir, 'my script.sh');
      writeFileSync(script, '#!/bin/sh\n# answers 1 to everything; $1 proves the argument arrived whole\n[ "$1" = "one arg" ] || exit 9\nwhile read -r line; do echo 1; done\n');
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
      const started = Date.now();
      const reply = await h.ask({ user: 'a', password: 'x' });
      assert.equal(errorOf(reply).condition, 'internal-server-error');
      assert.ok(Date.now() - started < 1500, 'failed fast instead of waiting for the timeout');
      await h.waitForLog((l) => l.msg === 'script cannot be started');
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

describe('connection and lifecycle (CONTRACT §5)', () => {
  test('a UTF-8 character split across two TCP reads arrives intact', async () => {
    const h = await startHarness();
    try {
      const password = 'good-😀-ü-€';
      const id = nextId();
      const stanza = Buffer.from(`<iq type='get' id='${id}' from='example.com' to='auth.example.com'><auth xmlns='urn:x-extauth:0' user='zoë'>${password}</auth></iq>`);
      const emoji = stanza.indexOf(Buffer.from('😀'));
      const reply = h.server.request('', id);
      h.server.writeRaw(stanza.subarray(0, emoji + 2));
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
      await h.waitForLog((l) => l.msg === 'connection lost');
      await h.server.waitOnline();
      assert.ok(h.server.connections >= 2);
      assert.equal(resultOf(await h.ask({ user: 'a', password: 'good' })), 'true');
      // A refused handshake is retried too, with growing delays.
      h.server.refuseHandshake = 'not-authorized';
      h.server.dropConnection();
      await h.waitForLog((l) => l.msg === 'connection attempt failed' && /XMPP_SECRET/.test(String(l.reason)));
      h.server.refuseHandshake = null;
      await h.server.waitOnline(15_000);
      const delays = h.logs().filter((l) => l.msg === 'reconnecting after delay').map((l) => l.delayMs as number);
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
      await h.waitForLog((l) => l.msg === 'connection attempt failed');
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
      const inFlight = [h.ask({ user: 'slow700', password: 'good' }), h.ask({ user: 'slow700', password: 'bad' })];
      await new Promise((resolve) => setTimeout(resolve, 150));
      const exit = h.stop('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const late = await h.ask({ user: 'alice', password: 'good' }).catch(() => null);
      assert.deepEqual((await Promise.all(inFlight)).map(resultOf), ['true', 'false']);
      assert.equal(await exit, 0);
      if (late) assert.equal(errorOf(late).condition, 'service-unavailable');
      assert.ok(h.server.rawReceived.join('').includes('</stream:stream>'), 'the stream was closed');
      const pids = h.logs().filter((l) => l.msg === 'script started').map((l) => l.scriptPid as number);
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
      const pid = h.logs().find((l) => l.msg === 'script started')!.scriptPid as number;
      assert.equal(await h.stop('SIGINT'), 0);
      assert.throws(() => process.kill(pid, 0));
    } finally {
      await h.cleanup();
    }
  });
});
