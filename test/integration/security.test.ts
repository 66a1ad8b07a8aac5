import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { errorOf, LIST_FDS, resultOf, SECRET, startHarness } from './harness.js';

describe('secrets stay secret', () => {
  test('no password or request line in any log line at trace level, nor in any reply', async () => {
    const h = await startHarness({ env: { LOG_LEVEL: 'trace', EXTERNAL_AUTH_TIMEOUT: '0.5' } });
    const passwords = [
      'good-Pa55-trace-1',
      'wrong-Pa55-trace-2',
      'good:col:ons:Pa55-3',
      'good-Pa55-stderr-4',
      'good-Pa55-crash-5',
      'good-Pa55-hang-6',
      'good-Pa55-garbage-7',
      'good\nPa55-ctl-8',
      `good${'Y'.repeat(5000)}`,
      'good-Pa55-setpass-9',
    ];
    try {
      const replies = [
        await h.ask({ user: 'alice', password: passwords[0] }),
        await h.ask({ user: 'alice', password: passwords[1] }),
        await h.ask({ user: 'alice', password: passwords[2] }),
        await h.ask({ user: 'stderr', password: passwords[3] }),
        await h.ask({ user: 'crash', password: passwords[4] }),
        await h.ask({ user: 'hang', password: passwords[5] }),
        await h.ask({ user: 'garbage', password: passwords[6] }),
        await h.ask({ user: 'alice', password: passwords[7] }),
        await h.ask({ user: 'alice', password: passwords[8] }),
        await h.ask({ kind: 'setpass', user: 'alice', password: passwords[9] }),
        await h.ask({ user: 'alice', password: passwords[0], from: 'intruder.example.net' }),
      ];
      assert.equal(resultOf(replies[0]!), 'true');
      assert.equal(errorOf(replies[5]!).condition, 'remote-server-timeout');
      // The script did write the password to its stderr, and the relay did log that line.
      const stderrLine = await h.waitForLog((l) => l.event === 'script.stderr');
      assert.match(String(stderrLine.stderr), /\[redacted\]/);
      await h.stop();
      const output = h.output();
      assert.ok(output.includes('"level":10') || output.includes('"level":20'), 'trace/debug lines were written');
      for (const password of passwords) {
        for (const piece of password.split('\n')) {
          assert.ok(!output.includes(piece), `log leaks ${piece.slice(0, 30)}`);
          for (const reply of replies) assert.ok(!reply.toString().includes(piece), 'reply leaks a password');
        }
      }
      assert.ok(!output.includes('auth:alice:example.com'), 'log shows a raw request line');
      assert.ok(!output.includes('isuser:'), 'log shows a raw request line');
      assert.ok(!output.includes(SECRET), 'log shows the component secret');
    } finally {
      await h.cleanup();
    }
  });

  test('the script environment has no XMPP_SECRET; it inherits only stdin, stdout and stderr', async () => {
    const h = await startHarness({ env: { SOME_OTHER_SETTING: 'kept' } });
    try {
      assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'env' })), 'true');
      const env = h.records().find((r) => r.env)!.env as Record<string, string>;
      assert.equal(env.XMPP_SECRET, undefined);
      assert.equal(env.SOME_OTHER_SETTING, 'kept');
      assert.ok(!JSON.stringify(env).includes(SECRET));
    } finally {
      await h.cleanup();
    }
    // A Python script lists its own descriptors; a Node one would show Node's internal ones.
    const g = await startHarness({ command: (record) => `${LIST_FDS} ${record}` });
    try {
      assert.equal(resultOf(await g.ask({ kind: 'isuser', user: 'fds' })), 'true');
      const listing = readFileSync(g.recordFile, 'utf8');
      const fds = listing.split('\n').map((line) => line.split(' -> ')[0]);
      assert.deepEqual(fds.sort(), ['0', '1', '2'], listing);
    } finally {
      await g.cleanup();
    }
  });

  test('a chatty stderr is truncated and rate limited', async () => {
    const h = await startHarness({ scriptArgs: ['--flood', '2000'] });
    try {
      const suppressed = await h.waitForLog((l) => l.event === 'script.stderr-suppressed', 5000);
      assert.ok((suppressed.count as number) > 1000);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
      // Every one of the 2000 lines is either relayed or counted as suppressed.
      const relayedLines = (lines: ReadonlyArray<Record<string, unknown>>) =>
        lines.filter((l) => l.event === 'script.stderr' && /^noise line/.test(String(l.stderr))).length;
      const suppressedLines = (lines: ReadonlyArray<Record<string, unknown>>) =>
        lines.filter((l) => l.event === 'script.stderr-suppressed').reduce((sum, l) => sum + (l.count as number), 0);
      await h.waitForLogs((lines) => relayedLines(lines) + suppressedLines(lines) >= 2000);
      const relayed = relayedLines(h.logs());
      assert.ok(relayed > 0 && relayed <= 30, `relayed ${relayed} of 2000 lines`);
    } finally {
      await h.cleanup();
    }
  });
});
