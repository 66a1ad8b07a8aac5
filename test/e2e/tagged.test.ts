// End to end with the tagged protocol: c2s clients log in over SASL PLAIN through a real
// Prosody and a real ejabberd, whose shims ask the component, which asks ONE process of
// examples/scripts/tagged_example.mjs (an async script whose backend call takes 300 ms here)
// with many requests in flight at once. A backend failure (`ID:E`) is an outage: the client
// is not told its password is wrong where the server can say so, and the process is kept.
// Once for every Prosody (0.12, 13) and every ejabberd (23.01, 24.12) installed.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { type ComponentProcess, ComponentProcess as Component, REPO_ROOT } from '../../support/component-process.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../../support/ejabberd.js';
import { type ProsodyInstall, prosodyTestTargets, ProsodyServer, randomSecret, shellWord, startComponentFor } from '../../support/prosody.js';
import { saslPlainLogin, type LoginResult } from '../../support/xmpp-client.js';

const prosodyTargets = prosodyTestTargets();
const ejabberdTargets = ejabberdTestTargets();
const SCRIPT = join(REPO_ROOT, 'examples/scripts/tagged_example.mjs');
const COMMAND = `${shellWord(process.execPath)} ${shellWord(SCRIPT)}`;
const PASSWORDS = { alice: 'wonderland', bob: 'builder' } as const;
const TAGGED_ENV = {
  EXTERNAL_AUTH_PROTOCOL: 'tagged',
  EXTERNAL_AUTH_PROCESSES: '1',
  EXTERNAL_AUTH_TIMEOUT: '10',
  TAGGED_EXAMPLE_DELAY_MS: '300',
};

/** 30 logins at once, alternately right and wrong: [username, password, should succeed]. */
function concurrentAttempts(): Array<[string, string, boolean]> {
  return Array.from({ length: 30 }, (_, i) => {
    const user = i % 2 ? 'alice' : 'bob';
    const right = i % 3 !== 0;
    return [user, right ? PASSWORDS[user] : `${PASSWORDS[user]}-not`, right];
  });
}

const restarts = (component: ComponentProcess) =>
  component.logLines.filter((l) => l.event === 'script.restarted' || l.event === 'script.exited' || l.event === 'script.hung');

function assertNoPassword(text: string): void {
  for (const password of [...Object.values(PASSWORDS), 'outage-pw-3f1']) assert.ok(!text.includes(password), 'a password appears in a log');
}

if (prosodyTargets.missing) describe(`tagged protocol end to end: ${prosodyTargets.missing}`, { skip: prosodyTargets.missing }, () => {});
for (const install of prosodyTargets.installs) throughProsody(install);
if (ejabberdTargets.missing) describe(`tagged protocol end to end: ${ejabberdTargets.missing}`, { skip: ejabberdTargets.missing }, () => {});
for (const install of ejabberdTargets.installs) throughEjabberd(install);

function throughProsody(install: ProsodyInstall): void {
  // Each title names the server it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`tagged protocol end to end: ${install.label}`, { timeout: 90_000 }, () => {
    const AUTH = 'auth.localhost';
    let prosody: ProsodyServer;
    let component: ComponentProcess;
    const login = (username: string, password: string): Promise<LoginResult> =>
      saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 15_000 });

    before(async () => {
      prosody = await ProsodyServer.start({
        install,
        components: { [AUTH]: randomSecret() },
        authComponents: [AUTH],
        authTimeout: 12,
        label: 'prosody tagged',
      });
      component = await startComponentFor(prosody, { domain: AUTH, command: COMMAND, env: TAGGED_ENV });
    });

    after(async () => {
      await component?.stop();
      if (prosody) {
        const logs = `${prosody.logText()}\n${component?.logText() ?? ''}\n${component?.stderr ?? ''}`;
        await prosody.stop();
        assertNoPassword(logs);
      }
    });

    test('right password logs in; wrong password and unknown user get not-authorized', async () => {
      assert.equal((await login('alice', PASSWORDS.alice)).ok, true);
      assert.equal((await login('alice', 'wrong')).condition, 'not-authorized');
      assert.equal((await login('mallory', 'anything')).condition, 'not-authorized');
    });

    test('30 logins at once through one script process all get their own answer', async () => {
      const attempts = concurrentAttempts();
      const results = await Promise.all(attempts.map(([user, password]) => login(user, password)));
      assert.deepEqual(
        results.map((r) => (r.ok ? 'ok' : r.condition)),
        attempts.map(([, , right]) => (right ? 'ok' : 'not-authorized')),
      );
    });

    test('a backend failure (E) is temporary-auth-failure, never not-authorized, and the process is kept', async () => {
      const before = restarts(component).length;
      const result = await login('outage1', 'outage-pw-3f1');
      assert.deepEqual({ ok: result.ok, condition: result.condition }, { ok: false, condition: 'temporary-auth-failure' });
      assert.equal((await login('bob', PASSWORDS.bob)).ok, true);
      assert.equal(restarts(component).length, before, 'no restart after an E');
    });
  });
}

function throughEjabberd(install: EjabberdInstall): void {
  // Each title names the server it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`tagged protocol end to end: ${install.label}`, { timeout: 120_000 }, () => {
    const domain = 'auth.localhost';
    const secret = randomSecret();
    let ejabberd: EjabberdServer;
    let component: ComponentProcess;
    const login = (username: string, password: string): Promise<LoginResult> =>
      saslPlainLogin({ host: ejabberd.host, port: ejabberd.c2sPort, domain: ejabberd.vhost, username, password, timeoutMs: 15_000 });

    before(async () => {
      ejabberd = await EjabberdServer.start({
        install,
        shim: { component: domain, timeout: '12000 ms' },
        service: { hosts: { [domain]: secret } },
        label: 'ejabberd tagged',
      });
      component = await Component.start({
        label: 'tagged component',
        service: ejabberd.serviceUri,
        domain,
        secret,
        command: COMMAND,
        env: { LOG_LEVEL: 'info', ...TAGGED_ENV },
      });
    });

    after(async () => {
      await component?.stop();
      if (ejabberd) {
        const logs = `${ejabberd.log()}\n${component?.logText() ?? ''}\n${component?.stderr ?? ''}`;
        await ejabberd.stop();
        assertNoPassword(logs);
      }
    });

    test('right password logs in; wrong password and unknown user get not-authorized', async () => {
      assert.equal((await login('alice', PASSWORDS.alice)).ok, true);
      assert.equal((await login('alice', 'wrong')).condition, 'not-authorized');
      assert.equal((await login('mallory', 'anything')).condition, 'not-authorized');
    });

    test('30 logins at once through one script process all get their own answer', async () => {
      const attempts = concurrentAttempts();
      const results = await Promise.all(attempts.map(([user, password]) => login(user, password)));
      assert.deepEqual(
        results.map((r) => r.ok),
        attempts.map(([, , right]) => right),
      );
    });

    test('a backend failure (E) is refused as an outage in the server log, and the process is kept', async () => {
      const before = restarts(component).length;
      const from = ejabberd.log().length;
      const result = await login('outage2', 'outage-pw-3f1');
      assert.equal(result.ok, false);
      // ejabberd's SASL can only say not-authorized; its log tells the outage from a wrong password.
      await ejabberd.waitForLog(/backend error[^\n]*outage2@localhost via auth\.localhost/, 30_000, from);
      assert.equal((await login('bob', PASSWORDS.bob)).ok, true);
      assert.equal(restarts(component).length, before, 'no restart after an E');
    });
  });
}
