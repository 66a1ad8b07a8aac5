import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { errorOf, resultOf, ROOT, startHarness } from './harness.js';

const SCRIPTS = path.join(ROOT, 'examples/scripts');
const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
/** As root: run as nobody, with the system's python3 (a per-user Python such as pyenv's may not be reachable). */
const asNobody: { uid?: number; gid?: number; env?: Record<string, string> } = isRoot
  ? { uid: NOBODY, gid: NOBODY, env: { PATH: '/usr/local/bin:/usr/bin:/bin' } }
  : {};

/**
 * Where the scripts run as nobody come from. As root, a copy of examples/scripts in a fresh
 * world-readable directory: nobody may not be able to reach the checkout itself (a checkout whose
 * parent directory is 0700, as `mktemp -d` makes it). Otherwise the scripts where they are.
 */
function scriptsNobodyCanRun(): { scripts: string; remove: () => void } {
  if (!isRoot) return { scripts: SCRIPTS, remove: () => {} };
  const top = mkdtempSync(path.join(tmpdir(), 'extauth-scripts-'));
  chmodSync(top, 0o755);
  const scripts = path.join(top, 'scripts');
  cpSync(SCRIPTS, scripts, { recursive: true, filter: (source) => path.basename(source) !== '__pycache__' });
  return { scripts, remove: () => rmSync(top, { recursive: true, force: true }) };
}

function makeUsersFile(accounts: Record<string, string>): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
  chmodSync(dir, 0o755);
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
        assert.deepEqual(
          concurrent.map(resultOf),
          Array.from({ length: 20 }, (_, i) => (i % 2 ? 'true' : 'false')),
        );
      } finally {
        await h.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

/** Frames one request the way the script's protocol expects it. */
function frame(protocol: 'generic' | 'ejabberd', request: string): Buffer {
  const body = Buffer.from(request);
  if (protocol === 'generic') return Buffer.concat([body, Buffer.from('\n')]);
  const header = Buffer.alloc(2);
  header.writeUInt16BE(body.length);
  return Buffer.concat([header, body]);
}

for (const protocol of ['generic', 'ejabberd'] as const) {
  describe(`examples/scripts/users_file_${protocol}.py with a users file it cannot read`, () => {
    const script = path.join(SCRIPTS, `users_file_${protocol}.py`);

    test('exits with an error naming the file and never answers 0', () => {
      const { dir, file } = makeUsersFile({ 'alice@example.com': 'secret-pw' });
      const { scripts, remove } = scriptsNobodyCanRun();
      try {
        // Root reads any file, so as root the script runs as nobody; otherwise the file loses its permissions.
        if (!isRoot) chmodSync(file, 0);
        const run = spawnSync(path.join(scripts, path.basename(script)), [file], { input: frame(protocol, 'auth:alice:example.com:secret-pw'), ...asNobody });
        assert.equal(run.error, undefined);
        assert.equal(run.status, 1, `exit status 1; stderr: ${run.stderr}`);
        assert.equal(run.stdout.length, 0, 'no answer at all, in particular no 0');
        const stderr = run.stderr.toString();
        assert.match(stderr, /users file error: .*users: Permission denied/);
        assert.ok(!stderr.includes('secret-pw'), 'the password is not printed');
      } finally {
        remove();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('a missing users file is an outage through the component, not a wrong password', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
      const h = await startHarness({ command: `${script} ${path.join(dir, 'no-such-file')}`, env: { EXTERNAL_AUTH_PROTOCOL: protocol } });
      try {
        for (const kind of ['auth', 'isuser'] as const) {
          const reply = await h.ask({ kind, user: 'alice', password: kind === 'auth' ? 'pw' : undefined });
          assert.equal(resultOf(reply), undefined, `${kind}: no result`);
          assert.deepEqual([errorOf(reply).type, errorOf(reply).condition], ['wait', 'internal-server-error'], kind);
        }
        await h.waitForLog((line) => JSON.stringify(line).includes('users file error') && JSON.stringify(line).includes('No such file or directory'));
      } finally {
        await h.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('examples/scripts/users_file_add.py', () => {
  test('creates the users file and reports its owner and mode', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
    try {
      const file = path.join(dir, 'users');
      const out = execFileSync(path.join(SCRIPTS, 'users_file_add.py'), [file, 'alice@example.com'], {
        input: 'pw\n',
        env: { ...process.env, USERS_FILE_ITERATIONS: '1000' },
        encoding: 'utf8',
      });
      assert.match(out, /^added alice@example\.com in .*users \(owner \S+, mode 0600\)$/m);
      const again = execFileSync(path.join(SCRIPTS, 'users_file_add.py'), [file, 'alice@example.com'], {
        input: 'pw2\n',
        env: { ...process.env, USERS_FILE_ITERATIONS: '1000' },
        encoding: 'utf8',
      });
      assert.match(again, /^password changed for alice@example\.com/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('run as root, gives a new file the owner of its directory and keeps an existing one', {
    skip: !isRoot && process.env.CI !== 'true' && 'needs root',
  }, () => {
    assert.ok(isRoot, 'CI runs as root');
    const top = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
    const { scripts, remove } = scriptsNobodyCanRun();
    try {
      chmodSync(top, 0o755);
      const dir = path.join(top, 'state');
      mkdirSync(dir, { mode: 0o750 });
      chownSync(dir, NOBODY, NOBODY);
      const file = path.join(dir, 'users');
      const add = (jid: string, password: string) =>
        execFileSync(path.join(SCRIPTS, 'users_file_add.py'), [file, jid], { input: `${password}\n`, env: { ...process.env, USERS_FILE_ITERATIONS: '1000' } });
      add('alice@example.com', 'pw-a');
      add('bob@example.com', 'pw-b');
      for (const name of ['users', 'users.lock']) {
        const st = statSync(path.join(dir, name));
        assert.deepEqual([st.uid, st.gid], [NOBODY, NOBODY], `${name} belongs to the directory's owner`);
      }
      // The service user (here nobody) can now read it, and change a password in it.
      const run = spawnSync(path.join(scripts, 'users_file_generic.py'), [file], {
        input: 'auth:alice:example.com:pw-a\nsetpass:bob:example.com:pw-c\nauth:bob:example.com:pw-c\n',
        ...asNobody,
        env: { ...asNobody.env, USERS_FILE_ITERATIONS: '1000' },
      });
      assert.equal(run.stdout.toString(), '1\n1\n1\n', run.stderr.toString());
      assert.equal(statSync(file).uid, NOBODY);
    } finally {
      remove();
      rmSync(top, { recursive: true, force: true });
    }
  });
});
