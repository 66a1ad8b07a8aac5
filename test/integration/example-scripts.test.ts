import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { resultOf, ROOT, startHarness } from './harness.js';

const SCRIPTS = path.join(ROOT, 'examples/scripts');

function makeUsersFile(accounts: Record<string, string>): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
  const file = path.join(dir, 'users');
  for (const [jid, password] of Object.entries(accounts)) {
    execFileSync(path.join(SCRIPTS, 'users_file_add.py'), [file, jid], { input: `${password}\n`, env: { ...process.env, USERS_FILE_ITERATIONS: '1000' } });
  }
  return { dir, file };
}

for (const protocol of ['generic', 'ejabberd'] as const) {
  describe(`examples/scripts/users_file_${protocol}.py through the component`, () => {
    test('checks salted hashes, handles colons and UTF-8, and manages accounts', async () => {
      const { dir, file } = makeUsersFile({ 'alice@example.com': 'pa:ss:wörd €', 'bob@example.com': 'hunter2' });
      assert.ok(!readFileSync(file, 'utf8').includes('hunter2'), 'the users file holds no password');
      const h = await startHarness({
        command: `${path.join(SCRIPTS, `users_file_${protocol}.py`)} ${file}`,
        env: { EXTERNAL_AUTH_PROTOCOL: protocol, EXTERNAL_AUTH_PROCESSES: '2', USERS_FILE_ITERATIONS: '1000' },
      });
      try {
        assert.equal(resultOf(await h.ask({ user: 'alice', password: 'pa:ss:wörd €' })), 'true');
        assert.equal(resultOf(await h.ask({ user: 'alice', password: 'pa:ss:wörd' })), 'false');
        assert.equal(resultOf(await h.ask({ user: 'bob', password: 'hunter2' })), 'true');
        assert.equal(resultOf(await h.ask({ user: 'bob', password: 'hunter2', server: 'other.org' })), 'false');
        assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'bob' })), 'true');
        assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'carol' })), 'false');
        assert.equal(resultOf(await h.ask({ kind: 'setpass', user: 'bob', password: 'new:pw' })), 'true');
        assert.equal(resultOf(await h.ask({ user: 'bob', password: 'hunter2' })), 'false');
        assert.equal(resultOf(await h.ask({ user: 'bob', password: 'new:pw' })), 'true');
        assert.equal(resultOf(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c' })), 'true');
        assert.equal(resultOf(await h.ask({ kind: 'tryregister', user: 'carol', password: 'again' })), 'false');
        assert.equal(resultOf(await h.ask({ user: 'carol', password: 'c' })), 'true');
        assert.equal(resultOf(await h.ask({ kind: 'removeuser', user: 'carol' })), 'true');
        assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'carol' })), 'false');
        const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => h.ask({ user: 'alice', password: i % 2 ? 'pa:ss:wörd €' : 'wrong' })));
        assert.deepEqual(concurrent.map(resultOf), Array.from({ length: 20 }, (_, i) => (i % 2 ? 'true' : 'false')));
      } finally {
        await h.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
