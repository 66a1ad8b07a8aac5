// `extauth-component check-script KIND USER [SERVER]` against good and misbehaving scripts:
// exit 0 for yes, 1 for no, 2 for a configuration error, 3 for a script that misbehaves, with
// a diagnosis naming the cause and the setting to change, and never the password.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { withTimeout } from '../support/fake-server.js';
import { MAIN, ROOT } from './harness.js';
import { endStdin } from '../support/child-stdin.js';

const SCRIPTS = path.join(ROOT, 'test/fixtures/scripts');
const FIXTURE = path.join(SCRIPTS, 'fixture.mjs');
const PASSWORD = 'good-Secret-pw';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs check-script with only the given environment (no XMPP_* at all) and a password on stdin. */
async function checkScript(args: string[], env: Record<string, string>, stdin = `${PASSWORD}\n`): Promise<Run> {
  const child = spawn(process.execPath, [MAIN, 'check-script', ...args], {
    // Python must buffer over a pipe as it does by default, whatever the test runner's environment says.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', EXTERNAL_AUTH_TIMEOUT: '1.5', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  endStdin(child.stdin, stdin);
  const [code] = (await withTimeout(once(child, 'exit'), 30_000, 'check-script did not exit')) as [number | null];
  assert.ok(!stdout.includes(PASSWORD) && !stderr.includes(PASSWORD), `the password is never printed:\n${stdout}${stderr}`);
  return { code, stdout, stderr };
}

const fixture = (...args: string[]) => ({ EXTERNAL_AUTH_COMMAND: [FIXTURE, ...args].join(' ') });

describe('check-script: answers', () => {
  test('exit 0 when the script says 1, with the request shown without its password', async () => {
    const run = await checkScript(['auth', 'alice', 'example.com'], fixture());
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /^sent: auth:alice:example\.com:\[password\]$/m);
    assert.match(run.stdout, /^answer: 1 \(yes\) after \d+ ms$/m);
    assert.match(run.stdout, /^verdict: OK, the script said yes \(1\)$/m);
  });

  test('exit 1 when it says 0; the password comes from the first line of stdin only', async () => {
    assert.equal((await checkScript(['auth', 'alice'], fixture(), 'bad-password\ngood-second-line\n')).code, 1);
    const run = await checkScript(['isuser', 'nobody-here'], fixture(), '');
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^sent: isuser:nobody-here:localhost$/m, 'SERVER defaults to localhost; isuser takes no password');
  });

  test('both protocols, and tagged: ID:1, ID:0, ID:E and an unknown ID', async () => {
    assert.equal((await checkScript(['auth', 'alice'], { ...fixture('--protocol', 'ejabberd'), EXTERNAL_AUTH_PROTOCOL: 'ejabberd' })).code, 0);
    const tagged = { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'tagged.py'), EXTERNAL_AUTH_PROTOCOL: 'tagged' };
    assert.equal((await checkScript(['auth', 'alice'], tagged)).code, 0);
    assert.equal((await checkScript(['auth', 'alice'], tagged, 'wrong\n')).code, 1);
    const outage = await checkScript(['auth', 'outage'], tagged);
    assert.equal(outage.code, 3);
    assert.match(outage.stdout, /backend failed \(ID:E\)/);
    const wrongId = await checkScript(['auth', 'wrongid'], tagged);
    assert.equal(wrongId.code, 3);
    assert.match(wrongId.stdout, /never sent/);
  });
});

describe('check-script: scram', () => {
  // What the fixture answers (the credentials of "pencil", salt QSXCR+Q6sek8bf92, 4096 rounds).
  const keys = (hash: 'sha1' | 'sha256') => {
    const salted = pbkdf2Sync('pencil', Buffer.from('QSXCR+Q6sek8bf92'), 4096, hash === 'sha1' ? 20 : 32, hash);
    return [createHash(hash).update(createHmac(hash, salted).update('Client Key').digest()).digest(), createHmac(hash, salted).update('Server Key').digest()];
  };
  const leaked = (run: Run, hash: 'sha1' | 'sha256') =>
    keys(hash).flatMap((key) => [key.toString('base64'), key.toString('hex')].filter((form) => (run.stdout + run.stderr).includes(form)));

  test('credentials parse: exit 0, the keys masked; 0: exit 1; a broken answer: exit 3 naming the rule, keys masked there too', async () => {
    for (const protocol of ['generic', 'tagged']) {
      const env = { ...fixture('--protocol', protocol), EXTERNAL_AUTH_PROTOCOL: protocol };
      const ok = await checkScript(['scram', 'leakkeys', 'example.com'], env, '');
      assert.equal(ok.code, 0, ok.stdout);
      assert.match(ok.stdout, /sent: scram:leakkeys:example\.com:sha-256/);
      assert.match(ok.stdout, /4096 iterations, salt UVNYQ1IrUTZzZWs4YmY5Mg==, stored key and server key of 32 bytes each \[masked\]/);
      assert.deepEqual(leaked(ok, 'sha256'), []);
      const sha1 = await checkScript(['scram-sha-1', 'alice'], env, '');
      assert.equal(sha1.code, 0);
      assert.match(sha1.stdout, /of 20 bytes each/);
      assert.equal((await checkScript(['scram', 'nobody'], env, '')).code, 1);
      for (const user of ['badlen', 'iter0', 'bare1']) {
        const bad = await checkScript(['scram', user], env, '');
        assert.equal(bad.code, 3, `${user}: ${bad.stdout}`);
        assert.match(bad.stdout, /credentials|bare 1/);
        assert.deepEqual(leaked(bad, 'sha256'), []);
      }
    }
  });

  test('with the ejabberd protocol, or an unknown hash: a configuration error', async () => {
    const ejabberd = await checkScript(['scram', 'alice'], { ...fixture(), EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }, '');
    assert.equal(ejabberd.code, 2);
    assert.match(ejabberd.stderr, /EXTERNAL_AUTH_PROTOCOL.*cannot carry SCRAM/);
    assert.equal((await checkScript(['scram-md5', 'alice'], fixture(), '')).code, 2);
  });
});

describe('check-script: configuration errors exit 2', () => {
  test('needs no XMPP_* variable, but EXTERNAL_AUTH_COMMAND, and says every problem at once', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_PROTOCOL: 'json', EXTERNAL_AUTH_TIMEOUT: 'soon' });
    assert.equal(run.code, 2);
    for (const name of ['EXTERNAL_AUTH_COMMAND', 'EXTERNAL_AUTH_PROTOCOL', 'EXTERNAL_AUTH_TIMEOUT']) assert.match(run.stderr, new RegExp(name));
    assert.doesNotMatch(run.stderr, /XMPP_/);
  });

  test('a misspelt setting is warned about with the intended name', async () => {
    const run = await checkScript(['auth', 'alice'], { ...fixture(), EXTERNAL_AUTH_PROTCOL: 'ejabberd' });
    assert.equal(run.code, 0);
    assert.match(run.stderr, /warning: EXTERNAL_AUTH_PROTCOL .*did you mean EXTERNAL_AUTH_PROTOCOL\?/);
  });

  test('a usage error, an unknown kind, a user with a colon', async () => {
    assert.equal((await checkScript([], fixture())).code, 2);
    assert.match((await checkScript(['login', 'alice'], fixture())).stderr, /unknown KIND 'login'/);
    assert.equal((await checkScript(['auth', 'a:b'], fixture())).code, 2);
  });
});

describe('check-script: misbehaving scripts exit 3 with the cause and the fix', () => {
  test('no answer because it does not flush: says so, and names EXTERNAL_AUTH_PTY', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'buffered.py') });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /did not answer within 1\.5 s; its answer came only when its input was closed/);
    assert.match(run.stdout, /does not flush.*EXTERNAL_AUTH_PTY=true/);
    // The fix in each language auth scripts are written in.
    for (const fix of [/python3 -u/, /flush=True/, /Perl: \$\| = 1/, /stdbuf -oL/, /Node: process\.stdout\.write needs no flush/])
      assert.match(run.stdout, fix);
  });

  test('PYTHONUNBUFFERED=1 in the shell does not hide a script that never flushes: the service would not have it', async () => {
    const run = await checkScript(['auth', 'alice'], {
      EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'buffered.py'),
      PYTHONUNBUFFERED: '1',
      MY_TOKEN: 'token-value-8d2',
    });
    assert.equal(run.code, 3, run.stdout);
    assert.match(run.stdout, /^not passed on from this shell, as the service would not have them: (.*, )?MY_TOKEN, (.*, )?PYTHONUNBUFFERED(,|$)/m);
    assert.ok(!run.stdout.includes('token-value-8d2'), 'names only, never values');
  });

  test('--env-file: the service environment file (systemd syntax) is what the script and the settings come from', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'check-env-'));
    try {
      const file = path.join(dir, 'extauth-component.env');
      writeFileSync(
        file,
        [
          '# the service settings',
          `EXTERNAL_AUTH_COMMAND="${path.join(SCRIPTS, 'buffered.py')}"`,
          '; a comment of the other kind',
          "EXTERNAL_AUTH_TIMEOUT='5'",
          '  PYTHONUNBUFFERED = 1  ',
          'not a variable line',
          '',
        ].join('\n'),
      );
      // The shell's own command is not the service's: the file's wins, and the shell's is named as dropped.
      const run = await checkScript(['--env-file', file, 'auth', 'alice'], { EXTERNAL_AUTH_COMMAND: '/bin/false' });
      assert.equal(run.code, 0, run.stdout + run.stderr);
      assert.match(run.stdout, /running .*buffered\.py/);
      assert.match(run.stdout, /not passed on from this shell.*EXTERNAL_AUTH_COMMAND/);
      assert.match(run.stderr, /warning: .*extauth-component\.env: line 6 has no '=' and is ignored/);
      // Node 20 itself looks at an --env-file argument even after the script's name, and stops
      // with status 9 when the file does not exist; a Node that leaves it alone gets our status 2.
      const missing = await checkScript(['--env-file', path.join(dir, 'nope.env'), 'auth', 'alice'], {});
      assert.ok(missing.code === 2 || missing.code === 9, `status ${missing.code}`);
      assert.match(missing.stderr, /nope\.env: (ENOENT|not found)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an ejabberd script on the generic protocol: no answer, with the protocol as a likely cause', async () => {
    const run = await checkScript(['auth', 'alice'], fixture('--protocol', 'ejabberd'));
    assert.equal(run.code, 3);
    assert.match(run.stdout, /did not answer within 1\.5 s/);
    assert.match(run.stdout, /it wrote nothing at all on stdout/);
    assert.match(run.stdout, /flush/);
    assert.match(run.stdout, /EXTERNAL_AUTH_PROTOCOL=ejabberd/);
  });

  test('a generic script on the ejabberd protocol: output that looks like generic', async () => {
    // The line script gets a frame with no newline, so it never answers; a one-shot line
    // script that answers anyway shows what its output looks like.
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'one-shot.py'), EXTERNAL_AUTH_PROTOCOL: 'ejabberd' });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /looks like the generic protocol.*set EXTERNAL_AUTH_PROTOCOL=generic/);
  });

  test('a tagged script on the generic protocol', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'tagged.py') });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /looks like the tagged protocol: set EXTERNAL_AUTH_PROTOCOL=tagged/);
  });

  test('a banner before the first request', async () => {
    const run = await checkScript(['auth', 'alice'], fixture('--banner'));
    assert.equal(run.code, 3);
    // Seen before the request, or (when the script starts slowly) ahead of the answer.
    assert.match(run.stdout, /before it was sent anything \(a banner or a prompt\)|not an answer before its answer \(a banner/);
    assert.match(run.stdout, /hello, I am a chatty script/);
  });

  test('a second answer after the first', async () => {
    const run = await checkScript(['auth', 'double'], fixture());
    assert.equal(run.code, 3);
    assert.match(run.stdout, /^answer: 1 \(yes\)/m);
    assert.match(run.stdout, /answered twice/);
    assert.match(run.stdout, /or the first one is a banner: a script that prints 1 or 0 on start/);
    assert.match(run.stdout, /every later answer would belong to the wrong request/);
  });

  test('the request echoed back (over pipes), with the password masked in the dump', async () => {
    const run = await checkScript(['auth', 'echo'], fixture());
    assert.equal(run.code, 3);
    assert.match(run.stdout, /came back on the script's output \(an echo\)/);
  });

  test('under a pty turned back to cooked mode: the echo, and EXTERNAL_AUTH_PTY=false as the fix', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'cooked-pty.sh'), EXTERNAL_AUTH_PTY: 'true' });
    assert.equal(run.code, 3, run.stdout + run.stderr);
    assert.match(run.stdout, /an echo/);
    assert.match(run.stdout, /cooked mode.*EXTERNAL_AUTH_PTY=false/);
  });

  test('an exit before answering: the status and the last lines of stderr', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: `/bin/sh -c 'echo "cannot open /etc/users.db: Permission denied" >&2; exit 4'` });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /exited without answering \(exit status 4\)|exited before it was sent anything \(exit status 4\)/);
    assert.match(run.stdout, /^ {2}\| cannot open \/etc\/users\.db: Permission denied$/m);
  });

  test('a crash on the request, by signal', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: `/bin/sh -c 'read line; kill -SEGV $$'` });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /exited without answering \(killed by signal SIGSEGV\)/);
  });

  test('an answer that is neither 1 nor 0, and a wrong ejabberd frame', async () => {
    const generic = await checkScript(['auth', 'garbage'], fixture());
    assert.equal(generic.code, 3);
    assert.match(generic.stdout, /not valid generic protocol/);
    assert.match(generic.stdout, /text: maybe\\n/);
    const ejabberd = await checkScript(['auth', 'garbage'], { ...fixture('--protocol', 'ejabberd'), EXTERNAL_AUTH_PROTOCOL: 'ejabberd' });
    assert.equal(ejabberd.code, 3);
    assert.match(ejabberd.stdout, /not valid ejabberd protocol: script answered byte 0x03 at offset 1/);
    assert.match(ejabberd.stdout, /hex: {2}00 03 01 02 03/);
  });

  test('a script that answers once and exits', async () => {
    const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: path.join(SCRIPTS, 'one-shot.py') });
    assert.equal(run.code, 3);
    assert.match(run.stdout, /exited right after answering \(exit status 0\), before its input was closed/);
  });
});

describe('check-script: the password is redacted as the daemon redacts its log', () => {
  // Non-ASCII from two UTF-8 lengths, so that every form differs from the plain text.
  const password = 'Pä€ss wörd';
  const bytes = Buffer.from(password);
  const mojibake = bytes.toString('latin1');
  const forms = [
    password,
    'P\\xe4\\u20acss', // repr() of the str
    'P\\xc3\\xa4\\xe2\\x82\\xacss', // repr() of the bytes, and the dump's text of the raw bytes
    bytes.toString('base64').slice(0, 12),
    mojibake,
    'PÃ¤â\\x82¬ss', // repr() of the mojibake
    [...bytes.subarray(1, 6)].map((b) => b.toString(16).padStart(2, '0')).join(' '), // the hex dump of the raw bytes
  ];

  for (const form of ['str', 'bytes', 'base64', 'latin1']) {
    test(`a script printing the password's ${form} form on stdout, and every form on stderr`, async () => {
      const run = await checkScript(['auth', 'alice'], { EXTERNAL_AUTH_COMMAND: `${path.join(SCRIPTS, 'leaky.py')} --stdout ${form}` }, `${password}\n`);
      assert.equal(run.code, 3, run.stdout);
      assert.match(run.stdout, /^ {4}hex: {2}/m, 'the stdout dump is shown');
      assert.match(run.stdout, /^last lines on stderr:$/m);
      assert.match(run.stdout, /^ {2}\| latin1 repr: '\[redacted\]'$/m);
      for (const shown of forms) assert.ok(!run.stdout.includes(shown) && !run.stderr.includes(shown), `${JSON.stringify(shown)} in:\n${run.stdout}`);
    });
  }
});
