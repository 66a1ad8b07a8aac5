// SCRAM through ejabberd, once for every generation installed (23.01 and 24.12): with
// `mod_auth_external_component: scram: true` ejabberd fetches each user's SCRAM credentials
// through the component (the `scram` query) and runs SCRAM itself, so a real client (slixmpp)
// logs in with SCRAM-SHA-256 while the password never leaves it. The script
// (test/fixtures/scripts/scram-users.py) records every line it is given: none holds a password.
// With PLAIN offered as well, ejabberd checks PLAIN against the same credentials. A backend
// failure refuses the login without reading as "no such user".
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest, type TestContext } from 'node:test';
import { ComponentProcess, REPO_ROOT } from '../support/component.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../support/ejabberd.js';
import { slixmppLogin, slixmppPython, slixmppSkipReason } from '../support/slixmpp.js';
import { stanzaErrorCondition, XmppSession } from '../support/xmpp-client.js';

const SCRIPT = join(REPO_ROOT, 'test/fixtures/scripts/scram-users.py');
const DOMAIN = 'auth.localhost';
const SECRET = 'scram-component-secret';
/** carol is known to the script (isuser, auth) but has no SCRAM credentials; every request for
 * "outage" fails in the script's backend. */
const USERS = { alice: 'wonderland-7f3a', bob: 'builder-c41d', carol: 'no-scram-for-carol-2b' };
const PASSWORDS = [...Object.values(USERS), 'wrong-password-9e0d'];

const targets = ejabberdTestTargets();
const slixmppMissing = slixmppSkipReason();
const skip = targets.missing ?? slixmppMissing;
if (skip) describe(`ejabberd SCRAM: ${skip}`, { skip }, () => {});
if (!slixmppMissing) for (const install of targets.installs) scram(install);

function scram(install: EjabberdInstall): void {
  const test = (name: string, fn: (t: TestContext) => Promise<void> | void) => nodeTest(`${name} (${install.label})`, fn);

  /** A server whose backend is a SCRAM store with SHA-256, and the files its script uses. */
  const setUp = (disabled: string[]) => {
    const state = { server: undefined as unknown as EjabberdServer, lineLog: '', usersFile: '', component: undefined as ComponentProcess | undefined };
    before(async () => {
      state.server = await EjabberdServer.start({
        install,
        shim: { component: DOMAIN, timeout: '3000 ms', scram: true },
        service: { hosts: { [DOMAIN]: SECRET } },
        extraConfig: [`auth_scram_hash: sha256`, `disable_sasl_mechanisms: ${JSON.stringify(disabled)}`].join('\n'),
        label: 'ejabberd (SCRAM store)',
      });
      state.lineLog = join(state.server.dir, 'script-lines.log');
      state.usersFile = join(state.server.dir, 'users.json');
      writeFileSync(state.usersFile, JSON.stringify(USERS));
    });
    after(async () => {
      await state.component?.stop();
      if (!state.server) return;
      const log = state.server.log();
      const componentLog = state.component?.logText() ?? '';
      await state.server.stop();
      for (const password of PASSWORDS) {
        assert.ok(!log.includes(password), 'the ejabberd log contains a password');
        assert.ok(!componentLog.includes(password), 'the component log contains a password');
      }
    });
    return state;
  };

  const startComponent = async (
    state: { server: EjabberdServer; lineLog: string; usersFile: string; component?: ComponentProcess | undefined },
    protocol: 'generic' | 'tagged',
  ) => {
    await state.component?.stop();
    state.component = await ComponentProcess.start({
      service: state.server.serviceUri,
      domain: DOMAIN,
      secret: SECRET,
      command: `${slixmppPython()} ${SCRIPT} ${state.usersFile}`,
      env: { EXTERNAL_AUTH_PROTOCOL: protocol, E2E_LINE_LOG: state.lineLog, E2E_NO_SCRAM: 'carol' },
    });
  };

  const scriptLines = (lineLog: string) => (existsSync(lineLog) ? readFileSync(lineLog, 'utf8').split('\n').filter(Boolean) : []);

  describe(`${install.label}: SCRAM-SHA-256 with credentials from the component, PLAIN not offered`, { timeout: 120_000 }, () => {
    const state = setUp(['PLAIN', 'X-OAUTH2']);
    const login = (user: string, password: string, mechanism = 'SCRAM-SHA-256') =>
      slixmppLogin({ host: state.server.host, port: state.server.c2sPort, jid: `${user}@${state.server.vhost}`, mechanism, password });

    test('a real client logs in with SCRAM-SHA-256; PLAIN is not offered', async () => {
      await startComponent(state, 'generic');
      const report = await login('alice', USERS.alice);
      assert.equal(report.result, 'ok', JSON.stringify(report));
      assert.ok(report.offered.includes('SCRAM-SHA-256'), `offered: ${report.offered}`);
      assert.ok(!report.offered.includes('PLAIN'), `offered: ${report.offered}`);
      assert.equal((await login('bob', USERS.bob, 'PLAIN')).result, 'unavailable');
      assert.equal((await login('bob', USERS.bob)).result, 'ok');
    });

    test('wrong password, unknown user, user without SCRAM credentials: not-authorized', async () => {
      for (const [user, password] of [
        ['alice', 'wrong-password-9e0d'],
        ['nobody', USERS.alice],
        ['carol', USERS.carol],
      ] as const) {
        const report = await login(user, password);
        assert.equal(report.result, 'refused', `${user}: ${JSON.stringify(report)}`);
        assert.equal(report.condition, 'not-authorized', user);
      }
      assert.doesNotMatch(state.server.log(), /auth backend error/, 'a refusal is not a backend failure');
    });

    test('the tagged protocol serves the credentials too', async () => {
      await startComponent(state, 'tagged');
      const from = scriptLines(state.lineLog).length;
      assert.equal((await login('alice', USERS.alice)).result, 'ok');
      assert.match(scriptLines(state.lineLog).slice(from).join('\n'), /^[0-9a-z]{1,16}:scram:alice:localhost:sha-256$/m);
    });

    test('the script never receives a password: its own record holds only the scram queries', () => {
      const lines = scriptLines(state.lineLog);
      assert.ok(lines.length >= 5, `${lines.length} lines`);
      for (const line of lines) {
        assert.match(line, /^(?:[0-9a-z]{1,16}:)?scram:\w+:localhost:sha-256$/, 'only scram queries');
        for (const password of PASSWORDS) assert.ok(!line.includes(password), 'a line holds a password');
      }
    });

    test('component stopped: the login is refused (not-authorized) and logged as a backend failure', async () => {
      await state.component?.stop();
      state.component = undefined;
      const from = state.server.log().length;
      const report = await login('alice', USERS.alice);
      assert.equal(report.result, 'refused', JSON.stringify(report));
      assert.equal(report.condition, 'not-authorized');
      await state.server.waitForLog(`scram for alice@localhost via ${DOMAIN}: component not connected`, 5000, from);
    });
  });

  describe(`${install.label}: PLAIN checked by ejabberd against the SCRAM credentials`, { timeout: 120_000 }, () => {
    const state = setUp(['X-OAUTH2']);
    const login = (user: string, password: string, mechanism: string) =>
      slixmppLogin({ host: state.server.host, port: state.server.c2sPort, jid: `${user}@${state.server.vhost}`, mechanism, password });

    test('PLAIN with the right password logs in, a wrong one is refused; the script sees no password', async () => {
      await startComponent(state, 'generic');
      const ok = await login('alice', USERS.alice, 'PLAIN');
      assert.equal(ok.result, 'ok', JSON.stringify(ok));
      assert.ok(ok.offered.includes('PLAIN') && ok.offered.includes('SCRAM-SHA-256'), `offered: ${ok.offered}`);
      const wrong = await login('alice', 'wrong-password-9e0d', 'PLAIN');
      assert.equal(wrong.result, 'refused');
      assert.equal(wrong.condition, 'not-authorized');
      assert.equal((await login('bob', USERS.bob, 'SCRAM-SHA-256')).result, 'ok');
      const lines = scriptLines(state.lineLog);
      assert.ok(lines.length >= 3);
      for (const line of lines) {
        assert.match(line, /^scram:\w+:localhost:sha-256$/, 'PLAIN was checked by ejabberd, not sent to the script as auth');
      }
    });

    test('a backend failure refuses the login (not-authorized, logged) and never reads as "no such user"', async () => {
      const from = state.server.log().length;
      const failed = await login('outage', 'any-password-5a1', 'SCRAM-SHA-256');
      assert.equal(failed.result, 'refused', JSON.stringify(failed));
      assert.equal(failed.condition, 'not-authorized');
      await state.server.waitForLog(`scram for outage@localhost via ${DOMAIN}: component answered with error`, 5000, from);
      // Registering a name makes ejabberd ask whether it exists: during the failure "outage"
      // still exists (conflict), while a name the script does not know is free; the
      // registration itself is refused, as a SCRAM store gets no password to pass on.
      const alice = await XmppSession.login({
        host: state.server.host,
        port: state.server.c2sPort,
        domain: state.server.vhost,
        username: 'alice',
        password: USERS.alice,
      });
      try {
        const register = async (user: string) =>
          stanzaErrorCondition(
            await alice.iq(
              `<iq type='set' id='reg-${user}' to='localhost'><query xmlns='jabber:iq:register'><username>${user}</username><password>pw-77c1</password></query></iq>`,
            ),
          );
        assert.equal(await register('outage'), 'conflict');
        assert.equal(await register('newcomer'), 'not-allowed');
      } finally {
        await alice.close();
      }
    });
  });
}
