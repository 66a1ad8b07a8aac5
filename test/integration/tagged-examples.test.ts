import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { withTimeout } from '../support/fake-server.js';
import { errorOf, resultOf, ROOT, startHarness } from './harness.js';
import { endStdin } from '../support/child-stdin.js';

const SCRIPTS = path.join(ROOT, 'examples/scripts');

/** Writes every line to the script at once, then waits for one answer per id and for its exit. */
async function converse(command: string, args: string[], lines: string[], env: Record<string, string>, waitMs: number) {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
  child.stderr.setEncoding('utf8').on('data', (t: string) => (err += t));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  endStdin(child.stdin, Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8'));
  try {
    const code = await withTimeout(exited, waitMs, `the script did not answer everything in ${waitMs} ms`);
    return { code, answers: out.split('\n').filter(Boolean), stderr: err };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Request lines and the answer each must get: passwords with colons and UTF-8, failures, every kind. */
function workload(count: number): Array<{ line: string; answer: string }> {
  const cases: Array<{ line: string; answer: string }> = [];
  for (let i = 0; i < count; i++) {
    const id = i.toString(36);
    switch (i % 6) {
      case 0:
        cases.push({ line: `${id}:auth:alice:localhost:wonderland`, answer: '1' });
        break;
      case 1:
        cases.push({ line: `${id}:auth:alice:localhost:wonder:land €`, answer: '0' });
        break;
      case 2:
        cases.push({ line: `${id}:auth:bob:localhost:builder`, answer: '1' });
        break;
      case 3:
        cases.push({ line: `${id}:isuser:carol:localhost`, answer: '0' });
        break;
      case 4:
        cases.push({ line: `${id}:auth:outage${i}:localhost:x`, answer: 'E' });
        break;
      default:
        cases.push({ line: `${id}:isuser:bob:localhost`, answer: '1' });
    }
  }
  return cases;
}

for (const [name, interpreter] of [
  ['tagged_example.py', 'python3'],
  ['tagged_example.mjs', process.execPath],
] as const) {
  describe(`examples/scripts/${name}`, () => {
    test('answers every id exactly once, rightly, and serves the requests concurrently', async () => {
      const cases = workload(60);
      // 60 requests of 400 ms each: about half a second when served together, 24 s one by one.
      const { code, answers, stderr } = await converse(
        interpreter,
        [path.join(SCRIPTS, name)],
        cases.map((c) => c.line),
        { TAGGED_EXAMPLE_DELAY_MS: '400' },
        12_000,
      );
      assert.equal(code, 0);
      const expected = cases.map((c) => `${c.line.split(':')[0]}:${c.answer}`).sort();
      assert.deepEqual([...answers].sort(), expected);
      assert.ok(stderr.includes('backend failed'));
      assert.ok(!stderr.includes('wonder'), 'stderr never holds a password');
    });

    test('a backend failure is answered E, never 0', async () => {
      const { answers } = await converse(
        interpreter,
        [path.join(SCRIPTS, name)],
        ['x1:auth:alice:localhost:wonderland', 'x2:isuser:bob:localhost'],
        { TAGGED_EXAMPLE_DELAY_MS: '1', TAGGED_EXAMPLE_FAILURE_RATE: '1' },
        10_000,
      );
      assert.deepEqual([...answers].sort(), ['x1:E', 'x2:E']);
    });
  });
}

function makeUsersFile(accounts: Record<string, string>): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-users-'));
  const file = path.join(dir, 'users');
  for (const [jid, password] of Object.entries(accounts)) {
    execFileSync(path.join(SCRIPTS, 'users_file_add.py'), [file, jid], { input: `${password}\n`, env: { ...process.env, USERS_FILE_ITERATIONS: '1000' } });
  }
  return { dir, file };
}

describe('examples/scripts/users_file_tagged.py', () => {
  test('answers by id, with colons and UTF-8 in passwords, and E when the users file cannot be read', async () => {
    const { dir, file } = makeUsersFile({ 'alice@example.com': 'pa:ss:wörd €' });
    try {
      const env = { USERS_FILE_ITERATIONS: '1000' };
      const script = path.join(SCRIPTS, 'users_file_tagged.py');
      const lines = Array.from({ length: 40 }, (_, i) => (i % 2 ? `r${i}:auth:alice:example.com:pa:ss:wörd €` : `r${i}:auth:alice:example.com:pa:ss:wörd`));
      lines.push('zz:isuser:alice:example.com', 'zy:isuser:alice:other.org');
      const { code, answers } = await converse('python3', [script, file], lines, env, 20_000);
      assert.equal(code, 0);
      const expected = [...Array.from({ length: 40 }, (_, i) => `r${i}:${i % 2}`), 'zz:1', 'zy:0'].sort();
      assert.deepEqual([...answers].sort(), expected);

      const unreadable = path.join(dir, 'a-directory');
      mkdirSync(unreadable);
      const broken = await converse('python3', [script, unreadable], ['q1:auth:alice:example.com:x', 'q2:isuser:alice:example.com'], env, 10_000);
      assert.deepEqual([...broken.answers].sort(), ['q1:E', 'q2:E']);
      assert.ok(broken.stderr.includes('users file error'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tagged example scripts through the component', () => {
  for (const name of ['tagged_example.py', 'tagged_example.mjs']) {
    test(`${name}: one process, many requests at once, E as an outage`, async () => {
      const h = await startHarness({
        command: path.join(SCRIPTS, name),
        env: { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', TAGGED_EXAMPLE_DELAY_MS: '200', EXTERNAL_AUTH_TIMEOUT: '10' },
      });
      try {
        const asks = Array.from({ length: 40 }, (_, i) =>
          h.ask({ user: i % 2 ? 'alice' : 'bob', password: i % 4 < 2 ? (i % 2 ? 'wonderland' : 'builder') : 'wrong' }),
        );
        const replies = await Promise.all(asks);
        assert.deepEqual(
          replies.map(resultOf),
          Array.from({ length: 40 }, (_, i) => (i % 4 < 2 ? 'true' : 'false')),
        );
        const outage = await h.ask({ user: 'outage1', password: 'x' });
        assert.deepEqual(errorOf(outage), { type: 'wait', condition: 'internal-server-error', text: errorOf(outage).text });
        // The process was kept: no restart after an E.
        assert.equal(resultOf(await h.ask({ user: 'alice', password: 'wonderland' })), 'true');
        assert.ok(!h.logs().some((l) => l.event === 'script.restarted'), 'no restart');
      } finally {
        await h.cleanup();
      }
    });
  }

  test('users_file_tagged.py: the users file over one process, UTF-8 and colons, every kind', async () => {
    const { dir, file } = makeUsersFile({ 'alice@example.com': 'pa:ss:wörd €' });
    const h = await startHarness({
      command: `${path.join(SCRIPTS, 'users_file_tagged.py')} ${file}`,
      env: { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', USERS_FILE_ITERATIONS: '1000' },
    });
    try {
      const concurrent = await Promise.all(Array.from({ length: 20 }, (_, i) => h.ask({ user: 'alice', password: i % 2 ? 'pa:ss:wörd €' : 'pa:ss:wörd' })));
      assert.deepEqual(
        concurrent.map(resultOf),
        Array.from({ length: 20 }, (_, i) => (i % 2 ? 'true' : 'false')),
      );
      assert.equal(resultOf(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c:1' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'carol', password: 'c:1' })), 'true');
      assert.equal(resultOf(await h.ask({ kind: 'setpass', user: 'carol', password: 'c:2' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'carol', password: 'c:1' })), 'false');
      assert.equal(resultOf(await h.ask({ kind: 'removeuser', user: 'carol' })), 'true');
      assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'carol' })), 'false');
    } finally {
      await h.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
