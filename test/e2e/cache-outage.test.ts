// The credential cache end to end with a real Prosody: clients log in over SASL PLAIN while the
// auth script's backend (an HTTP service in its own process) is killed under them. Users the
// script accepted shortly before keep logging in; everyone else is told temporary-auth-failure,
// never not-authorized and never let in. Once for every Prosody generation installed (0.12, 13).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { type ComponentProcess, REPO_ROOT } from '../../support/component-process.js';
import { sleep } from '../../support/wait.js';
import { withTimeout } from '../support/fake-server.js';
import { type ProsodyInstall, prosodyTestTargets, ProsodyServer, shellWord, startComponentFor } from '../../support/prosody.js';
import { saslPlainLogin, type LoginResult } from '../../support/xmpp-client.js';

const targets = prosodyTestTargets();
const BACKEND = join(REPO_ROOT, 'test/fixtures/e2e/users-backend.mjs');
const SCRIPT = join(REPO_ROOT, 'test/fixtures/e2e/users-http.mjs');
const STALE_EVENT = 'cache.stale-answer';
const CACHED = ['c0', 'c1', 'c2', 'c3', 'c4'];
const OTHERS = ['o0', 'o1', 'o2'];
const USERS: Record<string, string> = Object.fromEntries([...CACHED, ...OTHERS].map((user) => [user, `pw-${user}-9d2e`]));

if (targets.missing) describe(`credential cache through Prosody: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) backendDies(install);

function backendDies(install: ProsodyInstall): void {
  // Each title names the Prosody it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`credential cache through ${install.label}: the backend dies mid-load`, { timeout: 120_000 }, () => {
    let prosody: ProsodyServer;
    let backend: ChildProcess;
    let component: ComponentProcess;

    const login = (username: string, password: string): Promise<LoginResult> =>
      saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 20_000 });

    before(async () => {
      // The shim waits longer than the component's own timeout, so the component's answer wins.
      prosody = await ProsodyServer.start({ install, authTimeout: 8, label: 'prosody cache e2e' });
      const usersFile = join(prosody.dir, 'users.json');
      writeFileSync(usersFile, JSON.stringify(USERS));
      backend = spawn(process.execPath, [BACKEND, usersFile], { stdio: ['ignore', 'pipe', 'inherit'] });
      const [portLine] = (await withTimeout(once(backend.stdout!.setEncoding('utf8'), 'data'), 10_000, 'the backend did not start')) as [string];
      const url = `http://127.0.0.1:${portLine.trim()}/`;
      component = await startComponentFor(prosody, {
        domain: `auth.${prosody.vhost}`,
        command: `${shellWord(process.execPath)} ${shellWord(SCRIPT)} ${shellWord(url)}`,
        env: {
          EXTERNAL_AUTH_PROCESSES: '2',
          EXTERNAL_AUTH_TIMEOUT: '3',
          // A TTL far shorter than the test: soon every cached login asks the script, and the
          // stale window is what answers while the backend is down.
          EXTERNAL_AUTH_CACHE_TTL: '0.2',
          EXTERNAL_AUTH_CACHE_STALE: '600',
        },
      });
    });

    after(async () => {
      if (backend && backend.exitCode === null && backend.signalCode === null) backend.kill('SIGKILL');
      const logs = [component ? `${component.logText()}\n${component.stderr}` : '', prosody ? prosody.logText() : ''].join('\n');
      await component?.stop();
      await prosody?.stop();
      for (const password of Object.values(USERS)) assert.ok(!logs.includes(password), 'a password appears in a log');
    });

    test('cached users keep logging in while others get temporary-auth-failure', async () => {
      for (const user of CACHED) assert.equal((await login(user, USERS[user]!)).ok, true, `${user} logs in while the backend is up`);

      const results: Array<{ user: string; down: boolean; ok: boolean; condition?: string }> = [];
      let down = false;
      let stop = false;
      const loops = CACHED.map(async (user) => {
        while (!stop) {
          const wasDown = down;
          const result = await login(user, USERS[user]!);
          results.push({ user, down: wasDown, ok: result.ok, ...(result.condition ? { condition: result.condition } : {}) });
        }
      });
      const until = (what: string, condition: () => boolean) =>
        withTimeout(
          (async () => {
            while (!condition()) await sleep(20);
          })(),
          60_000,
          `never: ${what}`,
        );
      const logins = (user: string, whileDown: boolean) => results.filter((r) => r.user === user && (!whileDown || r.down)).length;

      await until('every cached user logged in twice under load', () => CACHED.every((user) => logins(user, false) >= 2));
      backend.kill('SIGKILL');
      await once(backend, 'exit');
      down = true;
      await component.waitForLog((line) => line.event === STALE_EVENT, 30_000, 'a stale answer');

      for (const user of OTHERS) {
        assert.deepEqual(pick(await login(user, USERS[user]!)), { ok: false, condition: 'temporary-auth-failure' }, `${user}, never verified, is not let in`);
      }
      assert.deepEqual(
        pick(await login('c0', 'not-the-password')),
        { ok: false, condition: 'temporary-auth-failure' },
        'a wrong password: an outage, not a refusal',
      );

      await until('every cached user logged in 3 times with the backend dead', () => CACHED.every((user) => logins(user, true) >= 3));
      stop = true;
      await Promise.all(loops);

      assert.deepEqual(
        results.filter((r) => !r.ok),
        [],
        'every login of a cached user succeeded, before and after the backend died',
      );
      const warnings = component.logLines.filter((line) => line.event === STALE_EVENT);
      assert.ok(warnings.length > 0 && warnings.every((line) => line.level === 40 && CACHED.includes(line.user as string)));
    });
  });
}

function pick(result: LoginResult): { ok: boolean; condition?: string | undefined } {
  return result.ok ? { ok: true } : { ok: false, condition: result.condition };
}
