import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ConfigError, ConfigErrors, loadConfig, SETTINGS } from '../../src/config/config.js';
import { resolveProgram } from '../../src/config/parsers.js';
import { helpText } from '../../src/config/help.js';
import { readFileSync } from 'node:fs';

// A scratch directory with: bin/auth-script (executable), bin/not-exec (0644), bin/a-dir/,
// "my scripts/auth script.sh" (executable, spaces in the path), and secret files.
const root = mkdtempSync(path.join(tmpdir(), 'extauth-config-'));
after(() => rmSync(root, { recursive: true, force: true }));

const bin = path.join(root, 'bin');
mkdirSync(bin);
const script = path.join(bin, 'auth-script');
writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
chmodSync(script, 0o755);
const notExecutable = path.join(bin, 'not-exec');
writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
chmodSync(notExecutable, 0o644);
const directory = path.join(bin, 'a-dir');
mkdirSync(directory);
const spaced = path.join(root, 'my scripts', 'auth script.sh');
mkdirSync(path.dirname(spaced));
writeFileSync(spaced, '#!/bin/sh\nexit 0\n');
chmodSync(spaced, 0o755);

function secretFile(name: string, content: string): string {
  const file = path.join(root, name);
  writeFileSync(file, content);
  return file;
}

type Env = Record<string, string | undefined>;

function baseEnv(extra: Env = {}): Env {
  return {
    XMPP_DOMAIN: 'auth.example.com',
    XMPP_SECRET: 's3cret',
    EXTERNAL_AUTH_COMMAND: script,
    PATH: bin,
    HOME: '/home/extauth',
    ...extra,
  };
}

function assertConfigError(env: Env, variable: string, cwd = root): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env, cwd);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigErrors, `expected ConfigErrors for ${variable}, got ${String(caught)}`);
  const found = caught.errors.find((error) => error.variable === variable);
  assert.ok(found, `an error for ${variable} among: ${caught.message}`);
  caught = found;
  assert.ok(caught instanceof ConfigError);
  assert.ok(caught.message.startsWith(`${variable}: `), `message names the variable: ${caught.message}`);
  assert.ok(caught.problem.length > 0);
  return caught;
}

describe('loadConfig defaults', () => {
  const config = loadConfig(baseEnv(), root);

  test('XMPP_SERVICE defaults to xmpp://localhost:5347', () => {
    assert.deepEqual({ ...config.service }, { uri: 'xmpp://localhost:5347', host: 'localhost', port: 5347, tls: false });
  });
  test('protocol defaults to generic', () => assert.equal(config.protocol, 'generic'));
  test('timeout defaults to 5 s = 5000 ms', () => assert.equal(config.timeoutMs, 5000));
  test('processes defaults to 1', () => assert.equal(config.processes, 1));
  test('blocking defaults to true', () => assert.equal(config.blocking, true));
  test('allow defaults to the parent domain of XMPP_DOMAIN', () => {
    assert.deepEqual(
      config.allow.map((j) => ({ ...j })),
      [{ local: null, domain: 'example.com' }],
    );
  });
  test('log level defaults to info', () => assert.equal(config.logLevel, 'info'));
  test('queue limit and pty have their defaults', () => {
    assert.equal(config.queueLimit, 10000);
    assert.equal(config.pty, false);
  });
  test('domain, secret and command are taken from the environment', () => {
    assert.equal(config.domain, 'auth.example.com');
    assert.equal(config.secret, 's3cret');
    assert.equal(config.command.file, script);
    assert.deepEqual([...config.command.args], []);
  });
});

describe('loadConfig values', () => {
  test('XMPP_SERVICE host and port are parsed; a missing port means 5347', () => {
    assert.deepEqual(
      { ...loadConfig(baseEnv({ XMPP_SERVICE: 'xmpp://127.0.0.1:5275' }), root).service },
      {
        uri: 'xmpp://127.0.0.1:5275',
        host: '127.0.0.1',
        port: 5275,
        tls: false,
      },
    );
    assert.deepEqual(
      { ...loadConfig(baseEnv({ XMPP_SERVICE: 'xmpp://xmpp.example.com' }), root).service },
      {
        uri: 'xmpp://xmpp.example.com:5347',
        host: 'xmpp.example.com',
        port: 5347,
        tls: false,
      },
    );
    const v6 = loadConfig(baseEnv({ XMPP_SERVICE: 'xmpp://[::1]:5347' }), root).service;
    assert.equal(v6.host, '::1');
    assert.equal(v6.port, 5347);
  });

  test('XMPP_DOMAIN is lower-cased and trimmed', () => {
    assert.equal(loadConfig(baseEnv({ XMPP_DOMAIN: ' Auth.Example.COM ' }), root).domain, 'auth.example.com');
  });

  test('EXTERNAL_AUTH_TIMEOUT accepts decimals', () => {
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_TIMEOUT: '0.5' }), root).timeoutMs, 500);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_TIMEOUT: '2.25' }), root).timeoutMs, 2250);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_TIMEOUT: '.25' }), root).timeoutMs, 250);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_TIMEOUT: '30' }), root).timeoutMs, 30000);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_TIMEOUT: '0.0001' }), root).timeoutMs, 1, 'never 0 ms');
  });

  test('EXTERNAL_AUTH_PROCESSES, _PROTOCOL, _BLOCKING, LOG_LEVEL take their values', () => {
    const config = loadConfig(
      baseEnv({ EXTERNAL_AUTH_PROCESSES: '4', EXTERNAL_AUTH_PROTOCOL: 'ejabberd', EXTERNAL_AUTH_BLOCKING: 'false', LOG_LEVEL: 'DEBUG' }),
      root,
    );
    assert.equal(config.processes, 4);
    assert.equal(config.protocol, 'ejabberd');
    assert.equal(config.blocking, false);
    assert.equal(config.logLevel, 'debug');
  });

  test('EXTERNAL_AUTH_BLOCKING accepts the usual spellings', () => {
    for (const value of ['true', 'TRUE', '1', 'yes', 'on', ' true ']) {
      assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_BLOCKING: value }), root).blocking, true, value);
    }
    for (const value of ['false', 'False', '0', 'no', 'off']) {
      assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_BLOCKING: value }), root).blocking, false, value);
    }
  });

  test('EXTERNAL_AUTH_ALLOW lists bare JIDs; domains are lower-cased, local parts kept', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_ALLOW: 'example.com, Admin@Example.ORG ,,' }), root);
    assert.deepEqual(
      config.allow.map((j) => ({ ...j })),
      [
        { local: null, domain: 'example.com' },
        { local: 'Admin', domain: 'example.org' },
      ],
    );
  });

  test('an empty EXTERNAL_AUTH_ALLOW falls back to the parent domain', () => {
    assert.deepEqual(
      loadConfig(baseEnv({ EXTERNAL_AUTH_ALLOW: '  ' }), root).allow.map((j) => ({ ...j })),
      [{ local: null, domain: 'example.com' }],
    );
  });
});

describe('loadConfig: required variables', () => {
  for (const variable of ['XMPP_DOMAIN', 'XMPP_SECRET', 'EXTERNAL_AUTH_COMMAND']) {
    test(`${variable} missing → ConfigError naming ${variable}`, () => {
      assertConfigError(baseEnv({ [variable]: undefined }), variable);
    });
    test(`${variable} empty → ConfigError naming ${variable}`, () => {
      assertConfigError(baseEnv({ [variable]: '' }), variable);
    });
  }

  test('XMPP_DOMAIN and EXTERNAL_AUTH_COMMAND that are only blanks count as missing', () => {
    assertConfigError(baseEnv({ XMPP_DOMAIN: '   ' }), 'XMPP_DOMAIN');
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: ' \t ' }), 'EXTERNAL_AUTH_COMMAND');
  });

  test('a domain without a parent needs EXTERNAL_AUTH_ALLOW', () => {
    assertConfigError(baseEnv({ XMPP_DOMAIN: 'localhost' }), 'EXTERNAL_AUTH_ALLOW');
    assert.deepEqual(
      loadConfig(baseEnv({ XMPP_DOMAIN: 'localhost', EXTERNAL_AUTH_ALLOW: 'localhost' }), root).allow.map((j) => ({ ...j })),
      [{ local: null, domain: 'localhost' }],
    );
  });
});

describe('loadConfig: invalid values name their variable', () => {
  const invalid: Array<[string, string]> = [
    ['EXTERNAL_AUTH_TIMEOUT', 'abc'],
    ['EXTERNAL_AUTH_TIMEOUT', '0'],
    ['EXTERNAL_AUTH_TIMEOUT', '0.0'],
    ['EXTERNAL_AUTH_TIMEOUT', '-1'],
    ['EXTERNAL_AUTH_TIMEOUT', ''],
    ['EXTERNAL_AUTH_TIMEOUT', '1e3'],
    ['EXTERNAL_AUTH_TIMEOUT', '5s'],
    ['EXTERNAL_AUTH_TIMEOUT', '3601'],
    ['EXTERNAL_AUTH_PROCESSES', '0'],
    ['EXTERNAL_AUTH_PROCESSES', '1.5'],
    ['EXTERNAL_AUTH_PROCESSES', '-1'],
    ['EXTERNAL_AUTH_PROCESSES', 'two'],
    ['EXTERNAL_AUTH_PROCESSES', '257'],
    ['EXTERNAL_AUTH_BLOCKING', 'maybe'],
    ['EXTERNAL_AUTH_BLOCKING', ''],
    ['EXTERNAL_AUTH_PROTOCOL', 'foo'],
    ['EXTERNAL_AUTH_PROTOCOL', ''],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', ''],
    ['XMPP_SERVICE', 'http://x'],
    ['XMPP_SERVICE', 'xmpp://'],
    ['XMPP_SERVICE', 'localhost:5347'],
    ['XMPP_SERVICE', 'not a uri'],
    ['XMPP_SERVICE', 'xmpp://host:5347/path'],
    ['XMPP_SERVICE', 'xmpp://host:5347?x=1'],
    ['XMPP_SERVICE', 'xmpp://user@host:5347'],
    ['XMPP_SERVICE', 'xmpp://host:99999'],
    ['XMPP_DOMAIN', 'user@example.com'],
    ['XMPP_DOMAIN', 'example.com/resource'],
    ['XMPP_DOMAIN', 'auth example.com'],
    ['XMPP_DOMAIN', '.example.com'],
    ['XMPP_DOMAIN', 'example.com.'],
    ['XMPP_DOMAIN', 'auth..example.com'],
    ['XMPP_DOMAIN', 'host:5347'],
    ['EXTERNAL_AUTH_ALLOW', 'example.com/res'],
    ['EXTERNAL_AUTH_ALLOW', 'a@'],
    ['EXTERNAL_AUTH_ALLOW', '@example.com'],
    ['EXTERNAL_AUTH_ALLOW', ' , '],
    ['EXTERNAL_AUTH_QUEUE', '0'],
    ['EXTERNAL_AUTH_QUEUE', 'many'],
    ['EXTERNAL_AUTH_PTY', 'maybe'],
    ['EXTERNAL_AUTH_COMMAND', "'unterminated"],
    ['EXTERNAL_AUTH_COMMAND', "''"],
  ];
  for (const [variable, value] of invalid) {
    test(`${variable}=${JSON.stringify(value)} → ConfigError naming ${variable}`, () => {
      assertConfigError(baseEnv({ [variable]: value }), variable);
    });
  }

  test('the message says what was wrong with the value', () => {
    const error = assertConfigError(baseEnv({ EXTERNAL_AUTH_TIMEOUT: 'abc' }), 'EXTERNAL_AUTH_TIMEOUT');
    assert.match(error.message, /abc/);
    assert.equal(error.name, 'ConfigError');
  });

  // A bad value is reported as ONE line on stderr; main.ts prints error.message as is.
  test('a ConfigError message is a single line even when the value holds a newline', () => {
    for (const [variable, value] of [
      ['XMPP_DOMAIN', 'auth.example.com\nevil'],
      ['EXTERNAL_AUTH_TIMEOUT', '5\n6'],
      ['LOG_LEVEL', 'info\nwarn'],
    ] as const) {
      const error = assertConfigError(baseEnv({ [variable]: value }), variable);
      assert.ok(!/[\r\n]/.test(error.message), `${variable}: ${JSON.stringify(error.message)}`);
    }
  });
});

describe('loadConfig: the secret', () => {
  test('XMPP_SECRET_FILE is read with one trailing newline stripped', () => {
    const file = secretFile('secret-lf', 'from-file\n');
    assert.equal(loadConfig(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: file }), root).secret, 'from-file');
  });

  test('a CRLF ending is stripped, inner and leading blanks are kept, only one newline goes', () => {
    assert.equal(loadConfig(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: secretFile('secret-crlf', ' a b\r\n') }), root).secret, ' a b');
    assert.equal(loadConfig(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: secretFile('secret-2lf', 'x\n\n') }), root).secret, 'x\n');
    assert.equal(loadConfig(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: secretFile('secret-nolf', 'no-newline') }), root).secret, 'no-newline');
  });

  test('an unreadable or empty XMPP_SECRET_FILE is a ConfigError for XMPP_SECRET_FILE', () => {
    assertConfigError(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: path.join(root, 'no-such-file') }), 'XMPP_SECRET_FILE');
    assertConfigError(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: secretFile('secret-empty', '\n') }), 'XMPP_SECRET_FILE');
  });

  test('setting both XMPP_SECRET and XMPP_SECRET_FILE is an error', () => {
    const error = assertConfigError(baseEnv({ XMPP_SECRET_FILE: secretFile('secret-both', 'other\n') }), 'XMPP_SECRET');
    assert.match(error.message, /XMPP_SECRET_FILE/);
  });

  test('no error message repeats the secret', () => {
    const error = assertConfigError(
      baseEnv({ XMPP_SECRET: 'very-secret-value', XMPP_SECRET_FILE: secretFile('secret-x', 'very-secret-file\n') }),
      'XMPP_SECRET',
    );
    assert.ok(!error.message.includes('very-secret'));
  });
});

describe('loadConfig: EXTERNAL_AUTH_COMMAND', () => {
  test('a program name is looked up on PATH and its arguments are split', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: 'auth-script --db "/var/lib/my db" x\\ y' }), root);
    assert.equal(config.command.file, script);
    assert.deepEqual([...config.command.args], ['--db', '/var/lib/my db', 'x y']);
  });

  test('PATH directories are tried in order, skipping ones without the program', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: 'auth-script', PATH: `/nonexistent:${root}:${bin}` }), root);
    assert.equal(config.command.file, script);
  });

  test('a program not on PATH → ConfigError for EXTERNAL_AUTH_COMMAND', () => {
    const error = assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: 'no-such-program-xyz' }), 'EXTERNAL_AUTH_COMMAND');
    assert.match(error.message, /no-such-program-xyz/);
  });

  test('a PATH entry that is not executable is skipped, so the name is not found', () => {
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: 'not-exec' }), 'EXTERNAL_AUTH_COMMAND');
  });

  test('a non-executable file → ConfigError for EXTERNAL_AUTH_COMMAND', () => {
    const error = assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: notExecutable }), 'EXTERNAL_AUTH_COMMAND');
    assert.match(error.message, /executable/);
  });

  test('a directory → ConfigError for EXTERNAL_AUTH_COMMAND', () => {
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: directory }), 'EXTERNAL_AUTH_COMMAND');
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: 'a-dir' }), 'EXTERNAL_AUTH_COMMAND');
  });

  test('a missing path → ConfigError for EXTERNAL_AUTH_COMMAND', () => {
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: path.join(root, 'nope.sh') }), 'EXTERNAL_AUTH_COMMAND');
  });

  test('a quoted path with spaces works', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: `'${spaced}' --flag 'two words'` }), root);
    assert.equal(config.command.file, spaced);
    assert.deepEqual([...config.command.args], ['--flag', 'two words']);
  });

  test('a path with backslash-escaped spaces works', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: spaced.replaceAll(' ', '\\ ') }), root);
    assert.equal(config.command.file, spaced);
  });

  test('an unquoted path with spaces is split, and its first word does not exist', () => {
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: spaced }), 'EXTERNAL_AUTH_COMMAND');
  });

  test('a relative path is resolved against cwd, not looked up on PATH', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: './bin/auth-script', PATH: '/nonexistent' }), root);
    assert.equal(config.command.file, script);
    assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: './auth-script' }), 'EXTERNAL_AUTH_COMMAND', root);
  });

  test('shell syntax in the command is passed as literal arguments', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: 'auth-script $HOME * | tee ; x' }), root);
    assert.deepEqual([...config.command.args], ['$HOME', '*', '|', 'tee', ';', 'x']);
  });

  test('resolveProgram reports the variable it was given', () => {
    assert.throws(
      () => resolveProgram('SOME_VAR', 'no-such-program-xyz', bin, root),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.variable, 'SOME_VAR');
        return true;
      },
    );
    assert.equal(resolveProgram('SOME_VAR', 'auth-script', bin, root), script);
  });
});

describe('loadConfig: the script environment', () => {
  test('scriptEnv lacks XMPP_SECRET and XMPP_SECRET_FILE but keeps everything else', () => {
    const inline = loadConfig(baseEnv({ FOO: 'bar', EMPTY: '', GONE: undefined }), root);
    assert.equal(inline.scriptEnv.XMPP_SECRET, undefined);
    assert.ok(!('XMPP_SECRET' in inline.scriptEnv));
    assert.equal(inline.scriptEnv.FOO, 'bar');
    assert.equal(inline.scriptEnv.EMPTY, '');
    assert.ok(!('GONE' in inline.scriptEnv));
    assert.equal(inline.scriptEnv.PATH, bin);
    assert.equal(inline.scriptEnv.HOME, '/home/extauth');
    assert.equal(inline.scriptEnv.XMPP_DOMAIN, 'auth.example.com');
    assert.equal(inline.scriptEnv.EXTERNAL_AUTH_COMMAND, script);

    const fromFile = loadConfig(baseEnv({ XMPP_SECRET: undefined, XMPP_SECRET_FILE: secretFile('secret-env', 'zzz\n'), FOO: 'bar' }), root);
    assert.ok(!('XMPP_SECRET_FILE' in fromFile.scriptEnv));
    assert.ok(!('XMPP_SECRET' in fromFile.scriptEnv));
    assert.ok(!Object.values(fromFile.scriptEnv).includes('zzz'));
    assert.equal(fromFile.scriptEnv.FOO, 'bar');
  });

  test("the caller's environment object is neither changed nor frozen", () => {
    const env = baseEnv();
    const before = { ...env };
    loadConfig(env, root);
    assert.deepEqual(env, before);
    assert.ok(!Object.isFrozen(env));
  });
});

describe('loadConfig: the result is deeply frozen', () => {
  const config = loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: 'auth-script a b', EXTERNAL_AUTH_ALLOW: 'example.com,admin@example.org' }), root);

  test('every object inside is frozen', () => {
    for (const [name, value] of Object.entries({
      config,
      service: config.service,
      command: config.command,
      args: config.command.args,
      allow: config.allow,
      allow0: config.allow[0],
      allow1: config.allow[1],
      scriptEnv: config.scriptEnv,
    })) {
      assert.ok(Object.isFrozen(value), `${name} is frozen`);
    }
  });

  test('assignments throw', () => {
    const mutable = config as unknown as {
      domain: string;
      service: { port: number };
      command: { args: string[] };
      allow: Array<{ domain: string }>;
      scriptEnv: Record<string, string>;
    };
    assert.throws(() => {
      mutable.domain = 'evil.example.com';
    }, TypeError);
    assert.throws(() => {
      mutable.service.port = 1;
    }, TypeError);
    assert.throws(() => {
      mutable.command.args.push('--evil');
    }, TypeError);
    assert.throws(() => {
      mutable.allow[0]!.domain = 'evil.example.com';
    }, TypeError);
    assert.throws(() => {
      mutable.scriptEnv.XMPP_SECRET = 'leak';
    }, TypeError);
    assert.equal(config.domain, 'auth.example.com');
    assert.deepEqual([...config.command.args], ['a', 'b']);
  });
});

describe('loadConfig: all errors at once, and near misses', () => {
  test('every invalid variable is reported in one go, each on its own line', () => {
    let caught: unknown;
    try {
      loadConfig(baseEnv({ XMPP_DOMAIN: undefined, EXTERNAL_AUTH_TIMEOUT: 'soon', LOG_LEVEL: 'loud', EXTERNAL_AUTH_PROCESSES: '0' }), root);
    } catch (error) {
      caught = error;
    }
    assert.ok(caught instanceof ConfigErrors);
    assert.deepEqual(caught.errors.map((error) => error.variable).sort(), ['EXTERNAL_AUTH_PROCESSES', 'EXTERNAL_AUTH_TIMEOUT', 'LOG_LEVEL', 'XMPP_DOMAIN']);
    assert.equal(caught.message.split('\n').length, 4);
  });

  test('a misspelt variable of ours is warned about with the intended name', () => {
    const config = loadConfig(baseEnv({ EXTERNAL_AUTH_PROCESS: '4', HTTP_LISTN: '9100', HTTP_PROXY: 'http://proxy', XMPP_SERCET: 'x' }), root);
    assert.equal(config.processes, 1);
    assert.ok(
      config.warnings.some((w) => w.startsWith('EXTERNAL_AUTH_PROCESS ') && w.includes('EXTERNAL_AUTH_PROCESSES')),
      config.warnings.join('|'),
    );
    assert.ok(config.warnings.some((w) => w.startsWith('HTTP_LISTN ') && w.includes('HTTP_LISTEN')));
    assert.ok(config.warnings.some((w) => w.startsWith('XMPP_SERCET ') && w.includes('XMPP_SECRET')));
    assert.ok(!config.warnings.some((w) => w.includes('HTTP_PROXY')), 'other programs’ variables are left alone');
    assert.ok(!config.warnings.some((w) => w.includes("'x'")), 'values are never quoted');
  });

  test('a correct environment has no warnings', () => {
    assert.deepEqual([...loadConfig(baseEnv(), root).warnings], []);
  });
});

describe('loadConfig: the script’s #! interpreter', () => {
  function scriptWith(name: string, firstLine: string): string {
    const file = path.join(bin, name);
    writeFileSync(file, `${firstLine}\nexit 0\n`, { mode: 0o755 });
    chmodSync(file, 0o755);
    return file;
  }

  test('a missing interpreter is a configuration error naming it', () => {
    const error = assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: scriptWith('no-interp', '#!/nonexistent/python9') }), 'EXTERNAL_AUTH_COMMAND');
    assert.match(error.message, /\/nonexistent\/python9/);
  });

  test('a program that env cannot find on PATH is named', () => {
    const error = assertConfigError(
      baseEnv({ EXTERNAL_AUTH_COMMAND: scriptWith('env-missing', '#!/usr/bin/env no-such-interpreter-xyz') }),
      'EXTERNAL_AUTH_COMMAND',
    );
    assert.match(error.message, /no-such-interpreter-xyz/);
  });

  test('a CRLF #! line is named as such', () => {
    const error = assertConfigError(baseEnv({ EXTERNAL_AUTH_COMMAND: scriptWith('crlf', '#!/bin/sh\r') }), 'EXTERNAL_AUTH_COMMAND');
    assert.match(error.message, /carriage return/);
  });

  test('an existing interpreter passes, also through env', () => {
    assert.doesNotThrow(() => loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: scriptWith('good-sh', '#!/bin/sh') }), root));
    assert.doesNotThrow(() => loadConfig(baseEnv({ EXTERNAL_AUTH_COMMAND: scriptWith('good-env', '#!/usr/bin/env sh'), PATH: `${bin}:/bin:/usr/bin` }), root));
  });
});

describe('loadConfig: the newer settings', () => {
  test('xmpps:// means direct TLS', () => {
    const config = loadConfig(baseEnv({ XMPP_SERVICE: 'xmpps://xmpp.example.com:5270' }), root);
    assert.deepEqual({ ...config.service }, { uri: 'xmpps://xmpp.example.com:5270', host: 'xmpp.example.com', port: 5270, tls: true });
    assert.equal(loadConfig(baseEnv(), root).service.tls, false);
  });

  test('HTTP_LISTEN is off by default and takes [HOST:]PORT, host defaulting to loopback', () => {
    assert.equal(loadConfig(baseEnv(), root).httpListen, null);
    assert.deepEqual({ ...loadConfig(baseEnv({ HTTP_LISTEN: '9100' }), root).httpListen }, { host: '127.0.0.1', port: 9100 });
    assert.deepEqual({ ...loadConfig(baseEnv({ HTTP_LISTEN: '0.0.0.0:9100' }), root).httpListen }, { host: '0.0.0.0', port: 9100 });
    assert.deepEqual({ ...loadConfig(baseEnv({ HTTP_LISTEN: '[::1]:9100' }), root).httpListen }, { host: '::1', port: 9100 });
    for (const bad of ['x', '99999', 'host:', ':9100', '1.2.3.4:0']) assertConfigError(baseEnv({ HTTP_LISTEN: bad }), 'HTTP_LISTEN');
  });

  test('the cache is off by default; TTL and STALE take seconds, 0 meaning off', () => {
    const off = loadConfig(baseEnv(), root);
    assert.deepEqual([off.cacheTtlMs, off.cacheStaleMs, off.cacheSize], [0, 0, 100000]);
    const on = loadConfig(baseEnv({ EXTERNAL_AUTH_CACHE_TTL: '60', EXTERNAL_AUTH_CACHE_STALE: '3600', EXTERNAL_AUTH_CACHE_SIZE: '10' }), root);
    assert.deepEqual([on.cacheTtlMs, on.cacheStaleMs, on.cacheSize], [60_000, 3_600_000, 10]);
    for (const [name, bad] of [
      ['EXTERNAL_AUTH_CACHE_TTL', '-1'],
      ['EXTERNAL_AUTH_CACHE_STALE', 'long'],
      ['EXTERNAL_AUTH_CACHE_SIZE', '0'],
    ] as const) {
      assertConfigError(baseEnv({ [name]: bad }), name);
    }
  });

  test('tagged is a protocol', () => {
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_PROTOCOL: 'tagged' }), root).protocol, 'tagged');
  });
});

describe('one table of settings', () => {
  test('--help lists every variable with its default', () => {
    const help = helpText('0.0.0');
    for (const spec of Object.values(SETTINGS)) {
      assert.ok(help.includes(spec.name), spec.name);
      assert.ok(help.includes(`default: ${spec.shown}`), `${spec.name} default ${spec.shown}`);
    }
  });

  test("the README's configuration table says what the table says", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = new Map<string, string>();
    for (const match of readme.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)) rows.set(match[1]!, match[2]!.replaceAll('`', '').trim());
    for (const spec of Object.values(SETTINGS)) {
      assert.ok(rows.has(spec.name), `README lists ${spec.name}`);
      assert.equal(rows.get(spec.name), spec.shown, `README's default for ${spec.name}`);
    }
    for (const name of rows.keys()) {
      assert.ok(
        Object.values(SETTINGS).some((spec) => spec.name === name),
        `README lists ${name}, which is not a setting`,
      );
    }
  });
});

describe('EXTERNAL_AUTH_BLOCKING follows the protocol when unset', () => {
  test('classic protocols default to lockstep, tagged to pipelining; an explicit value wins', () => {
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_PROTOCOL: 'generic' }), root).blocking, true);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }), root).blocking, true);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_PROTOCOL: 'tagged' }), root).blocking, false);
    assert.equal(loadConfig(baseEnv({ EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_BLOCKING: 'true' }), root).blocking, true);
  });
});
