import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseEnvironmentFile, SERVICE_PATH, serviceEnvironment } from '../../src/ops/service-environment.js';

describe('parseEnvironmentFile (systemd EnvironmentFile syntax)', () => {
  test('KEY=VALUE lines, comments with # and ;, blank lines, blanks around the name and the value', () => {
    const { variables, warnings } = parseEnvironmentFile('# comment\n; other comment\n\nA=1\n  B = two words  \nC=\n');
    assert.deepEqual(variables, { A: '1', B: 'two words', C: '' });
    assert.deepEqual(warnings, []);
  });

  test('quotes: single literal, double with backslash escapes, over several lines; mixed with bare text', () => {
    const { variables } = parseEnvironmentFile(`S='a "b" \\\\n $x'\nD="a \\"b\\" \\\\ \\$x \\\`c\\\` \\n"\nM="line one\nline two"\nX=pre"mid"'post'\n`);
    assert.equal(variables.S, 'a "b" \\\\n $x');
    assert.equal(variables.D, 'a "b" \\ $x `c` \\n');
    assert.equal(variables.M, 'line one\nline two');
    assert.equal(variables.X, 'premidpost');
  });

  test('outside quotes a backslash escapes the next character and joins a line ending in it', () => {
    const { variables } = parseEnvironmentFile('A=one\\ two\\\nthree\nB=\\#x\n');
    assert.deepEqual(variables, { A: 'one twothree', B: '#x' });
  });

  test('lines systemd ignores are ignored with a warning naming the line, never its text', () => {
    const { variables, warnings } = parseEnvironmentFile('just-a-password\n1BAD=x\nGOOD=y\nOPEN="never closed\n');
    assert.deepEqual(Object.keys(variables), ['GOOD', 'OPEN']);
    assert.deepEqual(warnings, [
      "line 1 has no '=' and is ignored",
      "line 2 is ignored: what comes before '=' is not a valid variable name",
      'line 4 has an unclosed " quote',
    ]);
  });

  test('a later assignment wins, as in systemd', () => {
    assert.deepEqual(parseEnvironmentFile('A=1\nA=2\n').variables, { A: '2' });
  });
});

describe('serviceEnvironment', () => {
  const caller = {
    PATH: '/home/me/bin:/usr/bin',
    HOME: '/home/me',
    LANG: 'C.UTF-8',
    LC_ALL: 'C.UTF-8',
    PYTHONUNBUFFERED: '1',
    EXTERNAL_AUTH_COMMAND: '/x',
    XMPP_DOMAIN: 'auth.example.com',
    AUTH_TOKEN: 'secret-token',
  };

  test("without a file: systemd's PATH, the locale, the user's identity and the component's settings; the rest is named", () => {
    const { env, dropped } = serviceEnvironment(caller);
    assert.deepEqual(env, {
      PATH: SERVICE_PATH,
      HOME: '/home/me',
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      EXTERNAL_AUTH_COMMAND: '/x',
      XMPP_DOMAIN: 'auth.example.com',
    });
    assert.deepEqual(dropped, ['AUTH_TOKEN', 'PATH', 'PYTHONUNBUFFERED']);
  });

  test("with a file: the file's variables instead of the shell's settings", () => {
    const { env, dropped } = serviceEnvironment(caller, { name: 'svc.env', text: 'EXTERNAL_AUTH_COMMAND=/y\nAUTH_TOKEN=from-file\n' });
    assert.equal(env.EXTERNAL_AUTH_COMMAND, '/y');
    assert.equal(env.AUTH_TOKEN, 'from-file');
    assert.equal(env.XMPP_DOMAIN, undefined);
    assert.ok(dropped.includes('EXTERNAL_AUTH_COMMAND') && dropped.includes('XMPP_DOMAIN'));
  });
});
