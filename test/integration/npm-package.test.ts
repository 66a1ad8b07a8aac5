// What `npm pack` + `npm install -g` gives a user: a working `extauth-component` command, the
// example scripts and docs, and a package entry point that does not start the daemon.
// Runs the install command of docs/operations.md with a temporary prefix in place of /usr/local
// (from npm's cache where it can), so the documented steps are the tested ones.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { authIq, FakeXmppServer, nextId, withTimeout } from '../support/fake-server.js';
import { errorOf, resultOf, ROOT, SECRET } from './harness.js';

const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const PATH = `${path.dirname(process.execPath)}:/usr/local/bin:/usr/bin:/bin`;

function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    input: options.input,
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(result.error, undefined, `${command} ${args.join(' ')}: ${result.error?.message}`);
  return result;
}

/** The `npm install -g` line of docs/operations.md's install steps, split into words. */
function installCommand(): string[] {
  const doc = readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
  const steps = /### 2\. The `extauth-component` command\n[\s\S]*?```sh\n([\s\S]*?)```/.exec(doc);
  assert.ok(steps, 'docs/operations.md has its install steps');
  const line = steps[1]!.split('\n').find((l) => l.startsWith('npm install -g '));
  assert.ok(line, 'the install steps run npm install -g');
  return line
    .replace(/\s+#.*$/, '')
    .trim()
    .split(/\s+/);
}

describe('the npm package, packed and installed globally as docs/operations.md says', () => {
  let dir: string;
  let prefix: string;
  let bin: string;
  let installed: string;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'extauth-pack-'));
    prefix = path.join(dir, 'prefix');
    const pack = run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT });
    assert.equal(pack.status, 0, pack.stderr);
    const [{ filename }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('\n[') + 1)) as [{ filename: string }];
    // docs/operations.md's own install command, with the scratch prefix for /usr/local.
    const documented = installCommand();
    assert.deepEqual(documented.slice(0, 4), ['npm', 'install', '-g', '--prefix']);
    assert.equal(documented[4], '/usr/local', 'the docs install under /usr/local, where the systemd units look');
    const args = documented.slice(1).map((arg) => (arg === '/usr/local' ? prefix : arg === './extauth-component-*.tgz' ? path.join(dir, filename) : arg));
    const install = run('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund']);
    assert.equal(install.status, 0, install.stderr);
    bin = path.join(prefix, 'bin/extauth-component');
    installed = path.join(prefix, 'lib/node_modules/extauth-component');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('installs the extauth-component command, which prints its version and help', () => {
    assert.ok(existsSync(bin), `${bin} exists`);
    const version = run(bin, ['--version'], { env: { PATH } });
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${VERSION}\n`);
    const help = run(bin, ['--help'], { env: { PATH } });
    assert.equal(help.status, 0, help.stderr);
    for (const name of ['XMPP_DOMAIN', 'XMPP_SECRET', 'EXTERNAL_AUTH_COMMAND', 'EXTERNAL_AUTH_PROTOCOL', 'LOG_LEVEL'])
      assert.ok(help.stdout.includes(name), name);
  });

  test('ships the license, the docs, the example scripts (executable) and the systemd units, not the tests', () => {
    for (const file of [
      'LICENSE',
      'README.md',
      'docs/operations.md',
      'examples/systemd/extauth-component.service',
      'examples/systemd/extauth-component@.service',
      'examples/prosody/mod_auth_external_component.lua',
    ]) {
      assert.ok(existsSync(path.join(installed, file)), file);
    }
    for (const script of ['users_file_generic.py', 'users_file_ejabberd.py', 'users_file_add.py']) {
      assert.ok(statSync(path.join(installed, 'examples/scripts', script)).mode & 0o100, `${script} is executable`);
    }
    for (const absent of ['test', 'src', 'bench', 'demo', 'examples/scripts/__pycache__'])
      assert.ok(!existsSync(path.join(installed, absent)), `${absent} is not shipped`);
  });

  test('a configuration error exits 2 naming the variable', () => {
    const result = run(bin, [], { env: { PATH, XMPP_DOMAIN: '', XMPP_SECRET: '', EXTERNAL_AUTH_COMMAND: '' } });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /XMPP_DOMAIN/);
  });

  test('importing the package does not start the component', () => {
    // Resolves the bare name from the directory that holds the installed package.
    const result = run(process.execPath, ['--input-type=module', '-e', "const m = await import('extauth-component'); console.log(typeof m.startComponent)"], {
      cwd: path.dirname(installed),
      env: { PATH },
    });
    assert.equal(result.stderr, '');
    assert.equal(result.status, 0);
    assert.equal(result.stdout, 'function\n');
  });

  test('the installed command checks the installed example script and answers a login with it', async () => {
    const users = path.join(dir, 'users');
    const add = run(path.join(installed, 'examples/scripts/users_file_add.py'), [users, 'alice@example.com'], {
      input: 'correct horse\n',
      env: { USERS_FILE_ITERATIONS: '1000' },
    });
    assert.equal(add.status, 0, add.stderr);
    const script = `${path.join(installed, 'examples/scripts/users_file_generic.py')} ${users}`;
    const check = run(bin, ['check-script', 'auth', 'alice', 'example.com'], { input: 'correct horse\n', env: { PATH, EXTERNAL_AUTH_COMMAND: script } });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /verdict: OK, the script said yes/);
    const server = new FakeXmppServer(SECRET);
    const port = await server.listen();
    const child = spawn(bin, [], {
      env: {
        PATH,
        XMPP_SERVICE: `xmpp://127.0.0.1:${port}`,
        XMPP_DOMAIN: 'auth.example.com',
        XMPP_SECRET: SECRET,
        EXTERNAL_AUTH_COMMAND: script,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (output += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (output += text));
    const exited = once(child, 'exit');
    try {
      await server.waitOnline().catch((error: Error) => assert.fail(`${error.message}; output:\n${output}`));
      const ask = (password: string) => {
        const id = nextId();
        return server.request(authIq({ id, user: 'alice', password }), id);
      };
      const yes = await ask('correct horse');
      assert.equal(resultOf(yes), 'true', JSON.stringify(errorOf(yes)));
      assert.equal(resultOf(await ask('wrong')), 'false');
      child.kill('SIGTERM');
      const [code] = (await withTimeout(exited, 15_000, 'the component did not exit')) as [number | null];
      assert.equal(code, 0, output);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await server.close();
    }
  });
});
