// End to end with a real Prosody, once for every generation installed (0.12 and 13): c2s clients log in over SASL PLAIN, the Lua shim
// (examples/prosody/mod_auth_external_component.lua) asks the component over XMPP, the component
// asks a generic-protocol script reading a users file. Two components are configured
// (auth1 then auth2) to prove failover.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { runCheckServer } from '../../src/ops/check-server.js';
import { readRequestLog } from '../support/request-log.js';
import type { ComponentProcess } from '../../support/component-process.js';
import { sleep } from '../../support/wait.js';
import { type ProsodyInstall, prosodyTestTargets, ProsodyServer, randomSecret, startComponentFor } from '../../support/prosody.js';
import { registerAccount, saslPlainLogin, stanzaErrorCondition, timeToStreamFeatures, XmppSession } from '../../support/xmpp-client.js';

const targets = prosodyTestTargets();
const AUTH1 = 'auth1.localhost';
const AUTH2 = 'auth2.localhost';
const SLOW_MS = 1000; // the script's answer about "slowpoke"
const HANG_MS = 4000; // the script's answer about "hang": after the component's timeout
const COMPONENT_TIMEOUT_S = '2';
const PROMPT_MS = 500; // "served promptly": generous for a loaded CI machine, far below SLOW_MS

const USERS: Record<string, string> = {
  alice: 'wonderland',
  carol: 'a:b::c:', // colons are the generic protocol's separator
  dmitri: 'пароль 密码 ü', // UTF-8 with a space (SASLprep-stable: no emoji, which SASLprep rejects)
  doomed: 'short-lived',
  slowpoke: 'tortoise',
  hang: 'forever',
};
for (let i = 0; i < 20; i++) USERS[`user${String(i).padStart(2, '0')}`] = `pw-${i}:${i}`;
const NEW_ALICE_PASSWORD = 'new:alice-pw-93c2';
const NEWBIE_PASSWORD = 'fresh:pw-5e1f';
const SECRETS = [...Object.values(USERS), NEW_ALICE_PASSWORD, NEWBIE_PASSWORD];

if (targets.missing) describe(`Prosody end to end: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) endToEnd(install);

function endToEnd(install: ProsodyInstall): void {
  // Each title names the Prosody it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label} end to end`, { timeout: 90_000 }, () => {
    let prosody: ProsodyServer;
    let usersFile: string;
    let requestLog: string;
    const running = new Map<string, ComponentProcess>();
    const everyComponent: ComponentProcess[] = [];

    const login = (username: string, password: string) =>
      saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 10_000 });
    const session = (username: string, password: string) =>
      XmppSession.login({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password });
    const featuresMs = () => timeToStreamFeatures({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, timeoutMs: 5000 });

    const startComponent = async (domain: string) => {
      const component = await startComponentFor(prosody, {
        domain,
        usersFile,
        env: {
          EXTERNAL_AUTH_TIMEOUT: COMPONENT_TIMEOUT_S,
          EXTERNAL_AUTH_PROCESSES: '2',
          E2E_REQUEST_LOG: requestLog,
          E2E_SLOW_USERS: `slowpoke=${SLOW_MS},hang=${HANG_MS}`,
        },
      });
      running.set(domain, component);
      everyComponent.push(component);
    };
    const stopComponent = async (domain: string) => {
      const status = await running.get(domain)?.stop();
      running.delete(domain);
      assert.deepEqual(status, { code: 0, signal: null }, `${domain} exits 0 on SIGTERM`);
    };

    const requests = (from = 0) => readRequestLog(requestLog, from);

    before(async () => {
      prosody = await ProsodyServer.start({
        components: { [AUTH1]: randomSecret(), [AUTH2]: randomSecret() },
        authComponents: [AUTH1, AUTH2],
        authTimeout: 5, // longer than the component's own timeout, so the component's error wins
        allowRegistration: true,
        label: 'prosody e2e',
        install,
      });
      usersFile = join(prosody.dir, 'users.json');
      requestLog = join(prosody.dir, 'requests.log');
      writeFileSync(usersFile, JSON.stringify(USERS));
      await startComponent(AUTH1);
    });

    after(async () => {
      for (const component of running.values()) await component.stop();
      if (prosody) {
        // No password in any log: Prosody's (at debug level) or the components'.
        const logs = [prosody.logText(), ...everyComponent.map((c) => `${c.logText()}\n${c.stderr}`)].join('\n');
        await prosody.stop();
        for (const secret of SECRETS) assert.ok(!logs.includes(secret), 'a password appears in a log');
      }
    });

    test('right password logs in, wrong password and unknown user get not-authorized', async () => {
      assert.deepEqual(pick(await login('alice', USERS.alice!)), { ok: true });
      assert.deepEqual(pick(await login('alice', 'wrong')), { ok: false, condition: 'not-authorized' });
      assert.deepEqual(pick(await login('mallory', 'anything')), { ok: false, condition: 'not-authorized' });
      assert.ok(requests().some((r) => r.op === 'auth' && r.user === 'alice' && r.server === 'localhost' && r.answer === '1'));
    });

    test('check-server while the component is connected: the domain is taken (exit 3); a wrong secret is still refused (exit 1)', async () => {
      assert.ok(running.has(AUTH1), 'the component is connected');
      const run = async (secret: string) => {
        const out: string[] = [];
        const err: string[] = [];
        const code = await runCheckServer(
          { XMPP_SERVICE: prosody.serviceUri, XMPP_DOMAIN: AUTH1, XMPP_SECRET: secret },
          { out: (l) => out.push(l), err: (l) => err.push(l) },
        );
        return { code, text: [...out, ...err].join('\n') };
      };
      const taken = await run(prosody.components[AUTH1]!);
      assert.equal(taken.code, 3, taken.text);
      assert.match(taken.text, /already taken by a connected component/);
      const wrong = await run('not-the-secret-4f1');
      assert.equal(wrong.code, 1, wrong.text);
      assert.match(wrong.text, /XMPP_SECRET is not the secret/);
      // Prosody refused the second component; the first is still serving.
      assert.equal((await login('alice', USERS.alice!)).ok, true);
    });

    test('a password with colons and a UTF-8 password log in', async () => {
      assert.deepEqual(pick(await login('carol', USERS.carol!)), { ok: true });
      assert.deepEqual(pick(await login('carol', 'a:b')), { ok: false, condition: 'not-authorized' });
      assert.deepEqual(pick(await login('dmitri', USERS.dmitri!)), { ok: true });
      assert.deepEqual(pick(await login('dmitri', 'пароль')), { ok: false, condition: 'not-authorized' });
    });

    test('20 concurrent logins, half with a wrong password, all get the right answer', async () => {
      const names = Object.keys(USERS).filter((name) => name.startsWith('user'));
      const attempts = names.map((name, i) => ({ name, right: i % 2 === 0 }));
      const results = await Promise.all(attempts.map(({ name, right }) => login(name, right ? USERS[name]! : `${USERS[name]}x`)));
      assert.deepEqual(
        results.map(pick),
        attempts.map(({ right }) => (right ? { ok: true } : { ok: false, condition: 'not-authorized' })),
      );
    });

    test('a password change through XEP-0077 reaches the script as setpass', async () => {
      const alice = await session('alice', USERS.alice!);
      try {
        const mark = requests().length;
        const changed = await alice.iq(register('alice', NEW_ALICE_PASSWORD));
        assert.equal(changed.attrs.type, 'result', changed.toString());
        assert.deepEqual(
          requests(mark).map((r) => `${r.op} ${r.user} ${r.server} ${r.answer}`),
          ['setpass alice localhost 1'],
        );
        assert.equal((await login('alice', NEW_ALICE_PASSWORD)).ok, true);
        assert.equal((await login('alice', USERS.alice!)).condition, 'not-authorized');
        assert.equal((await alice.iq(register('alice', USERS.alice!))).attrs.type, 'result');
      } finally {
        await alice.close();
      }
      assert.equal((await login('alice', USERS.alice!)).ok, true);
    });

    test('in-band registration (XEP-0077) asks isuser, then tryregister', async () => {
      const register = (username: string, password: string) =>
        registerAccount({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password });
      let mark = requests().length;
      const created = await register('newbie', NEWBIE_PASSWORD);
      assert.equal(created.attrs.type, 'result', created.toString());
      assert.deepEqual(
        requests(mark).map((r) => `${r.op} ${r.user} ${r.answer}`),
        ['isuser newbie 0', 'tryregister newbie 1'],
      );
      assert.equal((await login('newbie', NEWBIE_PASSWORD)).ok, true);

      mark = requests().length;
      const taken = await register('carol', 'other:pw-77ab');
      assert.equal(stanzaErrorCondition(taken), 'conflict', taken.toString());
      assert.deepEqual(
        requests(mark).map((r) => `${r.op} ${r.user} ${r.answer}`),
        ['isuser carol 1'],
      );
      assert.equal((await login('carol', USERS.carol!)).ok, true);
    });

    test('removing the account through XEP-0077 reaches the script as removeuser', async () => {
      const doomed = await session('doomed', USERS.doomed!);
      const mark = requests().length;
      const reply = await doomed.iq(`<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
      assert.equal(reply.attrs.type, 'result', reply.toString());
      await doomed.close();
      assert.deepEqual(
        requests(mark).map((r) => `${r.op} ${r.user} ${r.answer}`),
        ['removeuser doomed 1'],
      );
      assert.equal((await login('doomed', USERS.doomed!)).condition, 'not-authorized');
    });

    test('while the script takes 1 s to answer, other clients are served promptly', async () => {
      const slow = login('slowpoke', USERS.slowpoke!);
      await sleep(100); // the slow request is in the script now
      const features = await featuresMs();
      const other = await login('alice', USERS.alice!); // the component's other script process
      const slowResult = await slow;
      assert.ok(features < PROMPT_MS, `stream features took ${features} ms while a login waited`);
      assert.equal(other.ok, true);
      assert.ok(other.elapsedMs < PROMPT_MS, `a second login took ${other.elapsedMs} ms while another waited`);
      assert.equal(slowResult.ok, true);
      assert.ok(slowResult.elapsedMs >= SLOW_MS - 50, `the slow login took only ${slowResult.elapsedMs} ms`);
    });

    test('the script does not answer in time: temporary-auth-failure, never not-authorized', async () => {
      const hung = login('hang', USERS.hang!);
      await sleep(100);
      assert.ok((await featuresMs()) < PROMPT_MS);
      const result = await hung;
      assert.deepEqual(pick(result), { ok: false, condition: 'temporary-auth-failure' });
      assert.ok(result.elapsedMs < HANG_MS, `answered after ${result.elapsedMs} ms, not at the component's timeout`);
      assert.equal((await login('alice', USERS.alice!)).ok, true, 'the component recovers');
    });

    test('failover: with the first component stopped, the second one answers', async () => {
      await startComponent(AUTH2);
      await stopComponent(AUTH1);
      assert.deepEqual(pick(await login('alice', USERS.alice!)), { ok: true });
      assert.deepEqual(pick(await login('alice', 'wrong')), { ok: false, condition: 'not-authorized' });
      assert.match(prosody.logText(), /auth for alice via auth1\.localhost failed/);
    });

    test('no component connected: temporary-auth-failure at once, other clients served promptly', async () => {
      const alice = await session('alice', USERS.alice!);
      try {
        await stopComponent(AUTH2);
        const results = await Promise.all([login('alice', USERS.alice!), login('alice', 'wrong'), login('carol', USERS.carol!)]);
        for (const result of results) {
          assert.deepEqual(pick(result), { ok: false, condition: 'temporary-auth-failure' });
          assert.ok(result.elapsedMs < PROMPT_MS * 4, `refused after ${result.elapsedMs} ms`);
        }
        assert.ok((await featuresMs()) < PROMPT_MS);
        // A password change cannot be confirmed, so it is not reported as done.
        const change = await alice.iq(register('alice', NEW_ALICE_PASSWORD));
        assert.equal(change.attrs.type, 'error');
        assert.equal(stanzaErrorCondition(change), 'internal-server-error');
      } finally {
        await alice.close();
      }
    });

    test('the component back: logins work again', async () => {
      await startComponent(AUTH1);
      assert.deepEqual(pick(await login('alice', USERS.alice!)), { ok: true });
      assert.deepEqual(pick(await login('alice', NEW_ALICE_PASSWORD)), { ok: false, condition: 'not-authorized' });
    });

    test('Prosody restarts: the component reconnects by itself and logins work again', async () => {
      const before = prosody.componentLogins(AUTH1);
      await prosody.restart();
      const deadline = Date.now() + 15_000;
      while (prosody.componentLogins(AUTH1) === before) {
        assert.ok(Date.now() < deadline, 'the component did not reconnect within 15 s');
        await sleep(100);
      }
      assert.equal(running.get(AUTH1)?.running, true);
      assert.deepEqual(pick(await login('alice', USERS.alice!)), { ok: true });
    });
  });
}

function pick(result: { ok: boolean; condition?: string | undefined }): { ok: boolean; condition?: string | undefined } {
  return result.ok ? { ok: true } : { ok: false, condition: result.condition };
}

function register(username: string, password: string): string {
  return `<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>${username}</username><password>${password}</password></query></iq>`;
}
