// One install layout in every document, example and unit: the command in /usr/local/bin, the
// package (examples, shims, units, docs) in /usr/local/lib/node_modules/extauth-component, the
// settings in /etc/extauth-component. The paths the systemd units use, the example configurations
// and the docs must agree, and every file they point into the package for must ship in it.
// (test/integration/npm-package.test.ts runs docs/operations.md's install command itself.)
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PREFIX = '/usr/local';
const COMMAND = `${PREFIX}/bin/extauth-component`;
const PACKAGE = `${PREFIX}/lib/node_modules/extauth-component`;
const SETTINGS = '/etc/extauth-component';

/** What a user reads or copies: the README, the docs and the examples' configurations and units. */
const DOCUMENTS = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
  ...readdirSync(path.join(ROOT, 'examples/systemd')).map((f) => `examples/systemd/${f}`),
  'examples/prosody/prosody.cfg.lua',
  'examples/ejabberd/ejabberd.yml',
  ...readdirSync(path.join(ROOT, 'examples/prometheus')).map((f) => `examples/prometheus/${f}`),
  'examples/backends/README.md',
];
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

test('no document uses another install layout or a placeholder clone URL', () => {
  const others: Array<[RegExp, string]> = [
    [/\/opt\/extauth-component/, 'a checkout in /opt'],
    [/\/usr\/local\/src\//, 'a checkout in /usr/local/src'],
    [/github\.com\/<[^>]*>/, 'a placeholder clone URL'],
    [/(?<!\/usr\/local)\/bin\/extauth-component/, `the command elsewhere than ${COMMAND}`],
    [/(?<!\/usr\/local\/lib\/)node_modules\/extauth-component/, `the package elsewhere than ${PACKAGE}`],
    [/npm install -g(?! --prefix \/usr\/local\b)/, 'npm install -g without --prefix /usr/local'],
  ];
  for (const file of DOCUMENTS) {
    const lines = read(file).split('\n');
    lines.forEach((line, i) => {
      for (const [pattern, what] of others) assert.ok(!pattern.test(line), `${file}:${i + 1} uses ${what}: ${line.trim()}`);
    });
  }
});

test('every path into the installed package names a file the package ships', () => {
  const { files } = JSON.parse(read('package.json')) as { files: string[] };
  const excluded = files.filter((f) => f.startsWith('!')).map((f) => f.slice(1));
  let count = 0;
  for (const file of DOCUMENTS) {
    for (const match of read(file).matchAll(new RegExp(`${PACKAGE.replaceAll('/', '\\/')}/([\\w./@-]*[\\w@-])`, 'g'))) {
      const inside = match[1]!;
      count++;
      assert.ok(existsSync(path.join(ROOT, inside)), `${file}: ${PACKAGE}/${inside} is not in the repository`);
      assert.ok(
        files.some((f) => !f.startsWith('!') && (inside === f || inside.startsWith(`${f}/`))) && !excluded.some((f) => inside.startsWith(f.replace('**/', ''))),
        `${file}: ${inside} is not in the npm package (package.json "files")`,
      );
    }
  }
  assert.ok(count >= 10, 'the docs point into the package');
});

test('the systemd units run the documented command and read the documented settings files', () => {
  const operations = read('docs/operations.md');
  for (const unit of ['extauth-component.service', 'extauth-component@.service']) {
    const text = read(`examples/systemd/${unit}`);
    assert.deepEqual(/^ExecStart=(.*)$/m.exec(text)?.[1], COMMAND, `${unit}: ExecStart`);
    assert.deepEqual(/^Documentation=file:(.*)$/m.exec(text)?.[1], `${PACKAGE}/docs/operations.md`, `${unit}: Documentation`);
    const environment = /^EnvironmentFile=(.*)$/m.exec(text)?.[1] ?? '';
    assert.ok(environment.startsWith(`${SETTINGS}/`), `${unit}: EnvironmentFile in ${SETTINGS}`);
    const documented = environment.replace('%i', 'NAME');
    assert.ok(operations.includes(documented) || operations.includes(environment.replace('%i.env', 'auth1.env')), `docs/operations.md uses ${documented}`);
    assert.ok(operations.includes(`${PACKAGE}/examples/systemd/${unit}`), `docs/operations.md installs ${unit} from the package`);
  }
  assert.ok(operations.includes(`\`${COMMAND}\``), `docs/operations.md names ${COMMAND}`);
});

test('Prosody finds the shim where the package installs it', () => {
  const shim = `${PACKAGE}/examples/prosody`;
  assert.ok(existsSync(path.join(ROOT, 'examples/prosody/mod_auth_external_component.lua')));
  assert.match(read('examples/prosody/prosody.cfg.lua'), new RegExp(`^plugin_paths = \\{ "${shim}" \\}$`, 'm'));
  assert.ok(read('docs/prosody.md').includes(`plugin_paths = { "${shim}" }`));
});
