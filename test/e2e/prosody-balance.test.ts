// End to end with a real Prosody (every generation installed): the shim with a list of
// components spreads the requests over them, survives one being killed under load, never sends a
// password change that may have reached one component to another, has every component forget a
// changed password at once, and answers every waiting login when the module is reloaded.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { readRequestLog } from '../support/request-log.js';
import { type ComponentProcess, sleep } from '../support/component.js';
import { type ProsodyInstall, prosodyTestTargets, ProsodyServer, randomSecret, startComponentFor } from '../support/prosody.js';
import { saslPlainLogin, stanzaErrorCondition, XmppSession } from '../support/xmpp-client.js';

const targets = prosodyTestTargets();
const AUTH1 = 'auth1.localhost';
const AUTH2 = 'auth2.localhost';
const SHIM_TIMEOUT_S = 2;
const SLOW_MS = 4000; // longer than the shim's timeout, shorter than the component's
const USERS: Record<string, string> = { alice: 'wonderland', hang: 'forever' };
for (let i = 0; i < 20; i++) USERS[`user${String(i).padStart(2, '0')}`] = `pw-${i}:${i}`;
const NAMES = Object.keys(USERS).filter((name) => name.startsWith('user'));
const NEW_PASSWORD = (name: string) => `changed:${name}-7d1e`;
const SECRETS = [...Object.values(USERS), ...NAMES.map(NEW_PASSWORD)];

if (targets.missing) describe(`Prosody with several components: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) {
  balanced(install);
  forgotten(install);
  reloaded(install);
}

/** Runs `total` tasks, `concurrency` at a time; `onDone(n)` after the n-th has finished. */
async function pool<T>(total: number, concurrency: number, task: (i: number) => Promise<T>, onDone?: (done: number) => void | Promise<void>): Promise<T[]> {
  const results: T[] = new Array(total);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < total) {
      const i = next++;
      results[i] = await task(i);
      await onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

function balanced(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label} with two components`, { timeout: 120_000 }, () => {
    let prosody: ProsodyServer;
    let usersFile: string;
    const logs: Record<string, string> = {};
    const running = new Map<string, ComponentProcess>();
    const everyComponent: ComponentProcess[] = [];

    const login = async (username: string, password: string) => ({
      ...(await saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 15_000 })),
      username,
    });
    const requests = (domain: string, from = 0) => readRequestLog(logs[domain]!, from);
    const count = (domain: string) => requests(domain).length;

    const startComponent = async (domain: string, env: Record<string, string> = {}) => {
      const component = await startComponentFor(prosody, {
        domain,
        usersFile,
        env: { EXTERNAL_AUTH_TIMEOUT: '8', EXTERNAL_AUTH_PROCESSES: '2', E2E_REQUEST_LOG: logs[domain]!, ...env },
      });
      running.set(domain, component);
      everyComponent.push(component);
    };

    before(async () => {
      prosody = await ProsodyServer.start({
        install,
        components: { [AUTH1]: randomSecret(), [AUTH2]: randomSecret() },
        authComponents: [AUTH1, AUTH2],
        authTimeout: SHIM_TIMEOUT_S,
        label: 'prosody balance',
      });
      usersFile = join(prosody.dir, 'users.json');
      writeFileSync(usersFile, JSON.stringify(USERS));
      for (const domain of [AUTH1, AUTH2]) logs[domain] = join(prosody.dir, `requests-${domain}.log`);
      await startComponent(AUTH1);
      await startComponent(AUTH2);
    });

    after(async () => {
      for (const component of running.values()) await component.stop();
      if (prosody) {
        const text = [prosody.logText(), ...everyComponent.map((c) => `${c.logText()}\n${c.stderr}`)].join('\n');
        await prosody.stop();
        for (const secret of SECRETS) assert.ok(!text.includes(secret), 'a password appears in a log');
      }
    });

    test('two components share the load: each serves a fair share of the logins', async () => {
      const marks: Record<string, number> = { [AUTH1]: count(AUTH1), [AUTH2]: count(AUTH2) };
      const total = 60;
      const results = await pool(total, 6, (i) => login(NAMES[i % NAMES.length]!, USERS[NAMES[i % NAMES.length]!]!));
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => `${r.username}: ${r.condition}`),
        [],
        'every login succeeded',
      );
      const served = [AUTH1, AUTH2].map((domain) => requests(domain, marks[domain]).filter((r) => r.op === 'auth').length);
      assert.equal(served[0]! + served[1]!, total, `each login asked once: ${served.join(' + ')}`);
      for (const n of served) assert.ok(n >= total / 4, `a component served only ${n} of ${total} logins (${served.join(' / ')})`);
    });

    test('a password change that times out on one component is not sent to the other', async () => {
      const changing = NAMES.slice(0, 6);
      const sessions = await Promise.all(
        changing.map((name) => XmppSession.login({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username: name, password: USERS[name]! })),
      );
      try {
        // auth2 again, now answering about these users only after the shim has given up.
        await running.get(AUTH2)!.stop();
        await startComponent(AUTH2, { E2E_SLOW_USERS: changing.map((name) => `${name}=${SLOW_MS}`).join(',') });
        const marks: Record<string, number> = { [AUTH1]: count(AUTH1), [AUTH2]: count(AUTH2) };
        const replies = await Promise.all(sessions.map((session, i) => session.iq(register(changing[i]!, NEW_PASSWORD(changing[i]!)))));
        const failed = changing.filter((_, i) => replies[i]!.attrs.type === 'error');
        const changed = changing.filter((_, i) => replies[i]!.attrs.type === 'result');
        assert.ok(failed.length > 0, 'no password change went to the slow component');
        for (const reply of replies.filter((r) => r.attrs.type === 'error')) assert.notEqual(stanzaErrorCondition(reply), undefined);
        const setpass = (domain: string) =>
          requests(domain, marks[domain])
            .filter((r) => r.op === 'setpass')
            .map((r) => r.user);
        // The slow component still carries out what it was sent: wait until it has.
        const deadline = Date.now() + SLOW_MS * 3;
        while (!failed.every((name) => setpass(AUTH2).includes(name))) {
          assert.ok(Date.now() < deadline, `the slow component never answered: ${setpass(AUTH2).join(', ')}`);
          await sleep(100);
        }
        assert.deepEqual(setpass(AUTH1).sort(), [...changed].sort(), 'only the changes answered in time ran on auth1');
        assert.deepEqual(setpass(AUTH2).sort(), [...failed].sort(), 'the timed-out changes ran on auth2 only');
        assert.match(prosody.logText(), /setpass for user\d\d via auth2\.localhost failed: no answer/);
      } finally {
        await Promise.all(sessions.map((session) => session.close()));
      }
      // Back to a normal auth2, and everyone's password as the store has it now.
      await running.get(AUTH2)!.stop();
      await startComponent(AUTH2);
      for (const name of changing) USERS[name] = NEW_PASSWORD(name);
    });

    test('one component killed under load: no login fails, the other takes over', async () => {
      const total = 80;
      const killAfter = 15;
      let killed: Promise<unknown> | undefined;
      let markAfterKill = 0;
      let finished = 0;
      let finishedAtMark = 0;
      const results = await pool(
        total,
        6,
        (i) => login(NAMES[i % NAMES.length]!, USERS[NAMES[i % NAMES.length]!]!).finally(() => finished++),
        async (done) => {
          if (done === killAfter) {
            killed = running.get(AUTH1)!.kill();
            running.delete(AUTH1);
            await killed;
            markAfterKill = count(AUTH2);
            finishedAtMark = finished;
          }
        },
      );
      assert.ok(killed, 'auth1 was killed');
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => `${r.username}: ${r.condition}`),
        [],
        'every login succeeded',
      );
      // Every login still to finish once auth1 was dead went to auth2, but for those auth1 may
      // have answered just before it died (at most one per worker).
      const afterKill = requests(AUTH2, markAfterKill).filter((r) => r.op === 'auth').length;
      const expected = total - finishedAtMark - 6;
      assert.ok(afterKill >= expected, `auth2 served ${afterKill} logins after the kill, expected at least ${expected}`);
      // Not asked first for every login: skipped while it is gone.
      const tries = prosody
        .logText()
        .split('\n')
        .filter((line) => /auth for user\d\d via auth1\.localhost failed/.test(line)).length;
      assert.ok(tries < (total - killAfter) / 2, `auth1 was tried ${tries} times after it was killed`);
    });

    // Without the reset, the shim would skip auth1 for its backoff (a second or more) and these
    // 20 quick logins would all go to auth2. How many auth1 gets depends on the machine's load.
    test('a component that connects again is used again at once', async () => {
      await startComponent(AUTH1);
      const mark = count(AUTH1);
      const results = await pool(20, 4, (i) => login(NAMES[i]!, USERS[NAMES[i]!]!));
      assert.deepEqual(
        results.filter((r) => !r.ok).map((r) => `${r.username}: ${r.condition}`),
        [],
        'every login succeeded',
      );
      const served = requests(AUTH1, mark).filter((r) => r.op === 'auth').length;
      assert.ok(served >= 1, `auth1 served ${served} of 20 logins after it came back`);
    });
  });
}

function forgotten(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label} with two caching components`, { timeout: 60_000 }, () => {
    const OLD = 'old:pw-4a1c';
    const NEW = 'new:pw-9b2e';
    let prosody: ProsodyServer;
    const logs: Record<string, string> = {};
    const components: ComponentProcess[] = [];

    before(async () => {
      prosody = await ProsodyServer.start({ install, components: { [AUTH1]: randomSecret(), [AUTH2]: randomSecret() }, label: 'prosody forget' });
      const usersFile = join(prosody.dir, 'users.json');
      writeFileSync(usersFile, JSON.stringify({ frank: OLD }));
      for (const domain of [AUTH1, AUTH2]) {
        logs[domain] = join(prosody.dir, `requests-${domain}.log`);
        components.push(await startComponentFor(prosody, { domain, usersFile, env: { EXTERNAL_AUTH_CACHE_TTL: '600', E2E_REQUEST_LOG: logs[domain]! } }));
      }
    });

    after(async () => {
      for (const component of components) await component.stop();
      await prosody?.stop();
    });

    const login = async (password: string) => {
      const { ok, condition } = await saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username: 'frank', password });
      return ok ? 'ok' : condition;
    };
    /**
     * Puts `password` in both components' caches: idle components take turns, so two logins
     * reach both; then four more reach no script.
     */
    const fillBothCaches = async (password: string) => {
      const asked = () => [AUTH1, AUTH2].map((domain) => readRequestLog(logs[domain]!).filter((r) => r.op === 'auth' && r.answer === '1').length);
      for (let i = 0; i < 2; i++) assert.equal(await login(password), 'ok');
      const filled = asked();
      assert.ok(filled[0]! > 0 && filled[1]! > 0, `both components have accepted frank: ${filled.join(', ')}`);
      for (let i = 0; i < 4; i++) assert.equal(await login(password), 'ok');
      assert.deepEqual(asked(), filled, 'both answered from their cache');
    };
    const refusedByBoth = async (password: string) => {
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await login(password));
      assert.deepEqual(results, ['not-authorized', 'not-authorized', 'not-authorized', 'not-authorized']);
    };
    const asFrank = async (password: string, request: string) => {
      const session = await XmppSession.login({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username: 'frank', password });
      try {
        assert.equal((await session.iq(request)).attrs.type, 'result');
      } finally {
        await session.close();
      }
    };

    test('a password changed through one component is refused by both at once', async () => {
      await fillBothCaches(OLD);
      await asFrank(OLD, register('frank', NEW));
      await refusedByBoth(OLD);
      assert.equal(await login(NEW), 'ok');
      assert.doesNotMatch(prosody.logText(), /forget for frank via .* failed/);
    });

    test('an account removed through one component is refused by both at once', async () => {
      await fillBothCaches(NEW);
      await asFrank(NEW, `<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>`);
      await refusedByBoth(NEW);
      assert.doesNotMatch(prosody.logText(), /forget for frank via .* failed/);
    });
  });
}

function reloaded(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: the shim reloaded`, { timeout: 60_000 }, () => {
    let prosody: ProsodyServer;
    let component: ComponentProcess;
    let requestLog: string;

    before(async () => {
      prosody = await ProsodyServer.start({ install, authTimeout: 20, adminShell: true, label: 'prosody reload' });
      const usersFile = join(prosody.dir, 'users.json');
      requestLog = join(prosody.dir, 'requests.log');
      writeFileSync(usersFile, JSON.stringify(USERS));
      const [domain] = Object.keys(prosody.components);
      component = await startComponentFor(prosody, {
        domain: domain!,
        usersFile,
        env: { EXTERNAL_AUTH_TIMEOUT: '15', E2E_REQUEST_LOG: requestLog, E2E_SLOW_USERS: 'hang=10000' },
      });
    });

    after(async () => {
      await component?.stop();
      await prosody?.stop();
    });

    test('a login waiting in the shim when it is reloaded gets temporary-auth-failure at once', async () => {
      const login = (username: string, password: string) =>
        saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 30_000 });
      const waiting = login('hang', USERS.hang!);
      await sleep(300); // the request is in the script now
      await prosody.shell(`module:reload("auth_external_component", "${prosody.vhost}")`);
      const result = await waiting;
      assert.deepEqual({ ok: result.ok, condition: result.condition }, { ok: false, condition: 'temporary-auth-failure' });
      assert.ok(!readRequestLog(requestLog).some((r) => r.user === 'hang'), 'answered only after the script did');
      assert.equal((await login('alice', USERS.alice!)).ok, true, 'the reloaded shim serves');
    });
  });
}

function register(username: string, password: string): string {
  return `<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>${username}</username><password>${password}</password></query></iq>`;
}
