// The ejabberd shim installed the way ejabberd users install third-party modules, once for every
// ejabberd generation installed (23.01 and 24.12): the package folder
// examples/ejabberd/mod_auth_external_component is copied into a throwaway
// CONTRIB_MODULES_PATH/sources/, `ejabberdctl module_install` has the running ejabberd compile and
// install it, `module_check` passes, and after a restart with auth_method: [external_component]
// (the options coming from the package's conf/ file) real clients log in through the component.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ComponentProcess, REPO_ROOT } from '../support/component.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../support/ejabberd.js';
import { saslPlainLogin } from '../support/xmpp-client.js';

const PACKAGE = 'mod_auth_external_component';
const PACKAGE_DIR = join(REPO_ROOT, 'examples/ejabberd', PACKAGE);
const FIXTURE = join(REPO_ROOT, 'test/fixtures/e2e-ejabberd/users.mjs');
const USERS = { alice: 'wonderland', bob: 'builder' };

const targets = ejabberdTestTargets();
if (targets.missing) describe(`ejabberd-contrib install: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) contribInstall(install);

function contribInstall(install: EjabberdInstall): void {
  describe(`${install.label}: the shim as an ejabberd-contrib module`, { timeout: 180_000 }, () => {
    let dir: string;
    let contrib: string;
    const servers: EjabberdServer[] = [];
    let component: ComponentProcess | undefined;

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'extauth-contrib-'));
      contrib = join(dir, 'modules');
      mkdirSync(join(contrib, 'sources'), { recursive: true });
      cpSync(PACKAGE_DIR, join(contrib, 'sources', PACKAGE), { recursive: true });
      writeFileSync(join(dir, 'users.json'), JSON.stringify(USERS));
    });

    after(async () => {
      await component?.stop();
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(dir, { recursive: true, force: true });
    });

    test(`module_install compiles and installs it, module_check passes (${install.label})`, async () => {
      // A server that does not use the method yet: with auth_method: [external_component] and
      // no shim installed, ejabberd would refuse to start.
      const server = await EjabberdServer.start({
        install,
        authMethod: 'mnesia',
        contribModulesPath: contrib,
        distributed: true,
        label: 'ejabberd (before install)',
      });
      servers.push(server);
      assert.match(server.ctl('modules_available').output, new RegExp(`^${PACKAGE}\\t`, 'm'));

      const installed = server.ctl('module_install', PACKAGE);
      assert.equal(installed.status, 0, installed.output);
      assert.match(installed.output, /has been installed/);
      assert.match(server.ctl('modules_installed').output, new RegExp(`^${PACKAGE}\\t`, 'm'));
      const check = server.ctl('module_check', PACKAGE);
      assert.equal(check.status, 0, check.output);
      // The options file came along; the reload that module_install did accepted it.
      await server.waitForLog(`Loading third-party configuration from ${join(contrib, PACKAGE, 'conf', `${PACKAGE}.yml`)}`, 10_000);
      // What the docs give for an ejabberd upgrade or a new version: uninstall, then install.
      const upgraded = server.ctl('module_upgrade', PACKAGE);
      assert.equal(upgraded.status, 0, upgraded.output);
      assert.match(server.ctl('modules_installed').output, new RegExp(`^${PACKAGE}\\t`, 'm'));
      assert.doesNotMatch(server.log(), /Configuration reload aborted|compilation_failed/);
      await server.stop();
    });

    test(`after a restart with auth_method: [external_component], real logins go through the component (${install.label})`, async () => {
      const domain = 'auth.localhost'; // the options file's default: "auth." + the vhost
      const server = await EjabberdServer.start({
        install,
        contribModulesPath: contrib,
        shim: null, // no module options in ejabberd.yml: the installed conf/ file holds them
        service: { hosts: { [domain]: 'contrib-component-secret' } },
        label: 'ejabberd (installed module)',
      });
      servers.push(server);
      component = await ComponentProcess.start({
        service: server.serviceUri,
        domain,
        secret: 'contrib-component-secret',
        protocol: 'ejabberd',
        command: `${process.execPath} ${FIXTURE} ${join(dir, 'users.json')}`,
      });
      const login = (username: string, password: string) =>
        saslPlainLogin({ host: server.host, port: server.c2sPort, domain: server.vhost, username, password, timeoutMs: 10_000 });
      assert.equal((await login('alice', USERS.alice)).ok, true);
      assert.equal((await login('bob', USERS.bob)).ok, true);
      assert.equal((await login('alice', 'wrong')).condition, 'not-authorized');
      assert.match(server.log(), new RegExp(`Loading third-party configuration from .*${PACKAGE}\\.yml`));
    });
  });
}
