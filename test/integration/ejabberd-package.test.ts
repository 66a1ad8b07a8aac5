// The ejabberd shim's package: it compiles without a warning against every ejabberd generation
// installed (warnings are errors here), it holds what `ejabberdctl module_check` requires, and
// its sources exist once (build.sh, the tests and module_install all use the same files).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../support/component.js';
import { buildShim, ejabberdTestTargets } from '../support/ejabberd.js';

const PACKAGE = 'mod_auth_external_component';
const PACKAGE_DIR = join(REPO_ROOT, 'examples/ejabberd', PACKAGE);

describe('the ejabberd shim package', () => {
  const targets = ejabberdTestTargets();
  for (const install of targets.installs) {
    test(`compiles with warnings as errors against ${install.label}`, () => {
      const out = mkdtempSync(join(tmpdir(), 'extauth-shim-build-'));
      try {
        buildShim(install, out);
        assert.deepEqual(readdirSync(out).sort(), ['ejabberd_auth_external_component.beam', 'mod_auth_external_component.beam']);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
  }
  if (targets.missing) test(`compiles against every generation: ${targets.missing}`, { skip: targets.missing }, () => {});

  test('holds what module_check requires: README.txt, COPYING, src/, a spec with author, summary, home and url', () => {
    const files = readdirSync(PACKAGE_DIR).sort();
    assert.deepEqual(files, ['COPYING', 'README.txt', 'conf', `${PACKAGE}.spec`, 'src']);
    const spec = readFileSync(join(PACKAGE_DIR, `${PACKAGE}.spec`), 'utf8');
    for (const key of ['author', 'summary', 'home', 'url']) assert.match(spec, new RegExp(`^${key}: "[^"]+"$`, 'm'), `spec has a non-empty ${key}`);
    assert.deepEqual(readdirSync(join(PACKAGE_DIR, 'conf')), [`${PACKAGE}.yml`]);
    assert.equal(readFileSync(join(PACKAGE_DIR, 'COPYING'), 'utf8'), readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8'), 'COPYING is the project LICENSE');
  });

  test('the conf/ file sets every option the options module declares, with its default', () => {
    const conf = readFileSync(join(PACKAGE_DIR, 'conf', `${PACKAGE}.yml`), 'utf8');
    const source = readFileSync(join(PACKAGE_DIR, 'src', `${PACKAGE}.erl`), 'utf8');
    const declared = [...source.matchAll(/^mod_opt_type\((\w+)\)/gm)].map((m) => m[1]!);
    assert.ok(declared.length >= 3);
    for (const option of declared) assert.match(conf, new RegExp(`^ {4}#? ?${option}: `, 'm'), `conf/ mentions ${option}`);
  });

  test('the Erlang sources exist once, in the package', () => {
    const erl = listFiles(join(REPO_ROOT, 'examples')).filter((file) => file.endsWith('.erl'));
    assert.deepEqual(erl.map((file) => relative(REPO_ROOT, file)).sort(), [
      `examples/ejabberd/${PACKAGE}/src/ejabberd_auth_external_component.erl`,
      `examples/ejabberd/${PACKAGE}/src/${PACKAGE}.erl`,
    ]);
  });
});

function listFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    if (entry.name === 'node_modules' || entry.name === 'ebin') return [];
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listFiles(path) : [path];
  });
}
