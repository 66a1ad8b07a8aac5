// The ejabberd shim under ejabberd's own auth cache (auth_use_cache: true, ejabberd's default),
// once for every generation installed (23.01 and 24.12). The backend also serves get_password
// (for SCRAM), so ejabberd looks a user up in its cache before every password check: an
// existence answer cached there would be taken for the password. It must never be.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ComponentProcess, REPO_ROOT } from '../support/component.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../support/ejabberd.js';
import { saslPlainLogin, stanzaErrorCondition, XmppSession } from '../support/xmpp-client.js';

const FIXTURE = join(REPO_ROOT, 'test/fixtures/e2e-ejabberd/users.mjs');
const DOMAIN = 'auth.localhost';
const SECRET = 'cache-component-secret';
const USERS = { alice: 'wonderland-31c', bob: 'builder-8d2' };

const targets = ejabberdTestTargets();
if (targets.missing) describe(`ejabberd auth cache: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) withCache(install);

function withCache(install: EjabberdInstall): void {
  describe(`${install.label}: the shim with ejabberd's auth cache on`, { timeout: 90_000 }, () => {
    let server: EjabberdServer;
    let component: ComponentProcess | undefined;
    const login = (username: string, password: string) =>
      saslPlainLogin({ host: server.host, port: server.c2sPort, domain: server.vhost, username, password, timeoutMs: 10_000 });

    before(async () => {
      server = await EjabberdServer.start({ install, authCache: true, service: { hosts: { [DOMAIN]: SECRET } }, label: 'ejabberd (auth cache)' });
      writeFileSync(join(server.dir, 'users.json'), JSON.stringify(USERS));
      component = await ComponentProcess.start({
        service: server.serviceUri,
        domain: DOMAIN,
        secret: SECRET,
        protocol: 'ejabberd',
        command: `${process.execPath} ${FIXTURE} ${join(server.dir, 'users.json')}`,
      });
    });

    after(async () => {
      await component?.stop();
      await server?.stop();
    });

    test(`a user ejabberd has checked for existence still logs in (${install.label})`, async () => {
      const alice = await XmppSession.login({ host: server.host, port: server.c2sPort, domain: server.vhost, username: 'alice', password: USERS.alice });
      try {
        // Registering a taken name makes ejabberd ask whether bob exists.
        const reply = await alice.iq(
          `<iq type='set' id='reg-bob' to='localhost'><query xmlns='jabber:iq:register'><username>bob</username><password>other-4e1</password></query></iq>`,
        );
        assert.equal(stanzaErrorCondition(reply), 'conflict');
      } finally {
        await alice.close();
      }
      const bob = await login('bob', USERS.bob);
      assert.equal(bob.ok, true, `condition ${bob.condition}`);
      assert.equal((await login('bob', 'wrong')).condition, 'not-authorized');
    });

    test(`a cached login is accepted while the component is away (${install.label})`, async () => {
      assert.equal((await login('alice', USERS.alice)).ok, true);
      await component?.stop();
      component = undefined;
      assert.equal((await login('alice', USERS.alice)).ok, true);
      assert.equal((await login('bob', 'wrong')).condition, 'not-authorized');
    });
  });
}
