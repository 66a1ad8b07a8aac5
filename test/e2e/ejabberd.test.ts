// End to end with a real ejabberd, once for every generation installed (23.01 and 24.12): c2s clients log in over SASL PLAIN, ejabberd's
// external_component auth method (examples/ejabberd) asks the component over XMPP, the
// component asks an ejabberd-protocol script. Also: ejabberd's own extauth with the same script.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest, type TestContext } from 'node:test';
import { readRequestLog } from '../support/request-log.js';
import { ComponentProcess, REPO_ROOT } from '../../support/component-process.js';
import { sleep } from '../../support/wait.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../../support/ejabberd.js';
import { saslPlainLogin, stanzaErrorCondition, timeToStreamFeatures, XmppSession } from '../../support/xmpp-client.js';

const targets = ejabberdTestTargets();
const FIXTURE = join(REPO_ROOT, 'test/fixtures/e2e-ejabberd/users.mjs');
const SHIM_TIMEOUT_MS = 2000;
const SLEEPER_DELAY_MS = 2600; // > shim timeout, < component timeout

const USERS: Record<string, string> = {
  alice: 'wonderland',
  bob: 'builder',
  carol: 'a:b::c:', // colons are the generic protocol's separator
  dmitri: 'пароль 密码 🔑 ü', // UTF-8, with a space
  doomed: 'short-lived',
  sleeper: 'zzz-sleepy-9f',
};
for (let i = 0; i < 20; i++) USERS[`user${String(i).padStart(2, '0')}`] = `pw-${i}:${i}`;
const PASSWORDS = [...Object.values(USERS), 'fresh-pw-5e1f', 'new-alice-pw-93c2', 'other-pw-77ab'];

if (targets.missing) describe(`ejabberd end to end: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) endToEnd(install);

function endToEnd(install: EjabberdInstall): void {
  // Each title names the ejabberd it ran against.
  const test = (name: string, fn: (t: TestContext) => Promise<void> | void) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label} end to end`, { timeout: 120_000 }, () => {
    let ejabberd: EjabberdServer;
    let usersFile: string;
    let requestLog: string;
    let components: ComponentProcess[] = [];
    const everyComponent: ComponentProcess[] = [];
    const domain = 'auth.localhost';

    const login = (username: string, password: string) =>
      saslPlainLogin({ host: ejabberd.host, port: ejabberd.c2sPort, domain: ejabberd.vhost, username, password, timeoutMs: 10_000 });

    const startInstance = (label: string) =>
      ComponentProcess.start({
        label,
        service: ejabberd.serviceUri,
        domain,
        secret: ejabberd.service.hosts[domain]!,
        protocol: 'ejabberd',
        command: `${process.execPath} ${FIXTURE} ${usersFile}`,
        env: { EXTERNAL_AUTH_TIMEOUT: '5', E2E_REQUEST_LOG: requestLog, E2E_SLEEP_MS: String(SLEEPER_DELAY_MS) },
      }).then((component) => {
        components.push(component);
        everyComponent.push(component);
        return component;
      });

    const requests = (from = 0) => readRequestLog(requestLog, from);

    before(async () => {
      ejabberd = await EjabberdServer.start({
        install,
        shim: { component: domain, timeout: `${SHIM_TIMEOUT_MS} ms` },
        service: { hosts: { [domain]: 'e2e-component-secret' } },
      });
      usersFile = join(ejabberd.dir, 'users.json');
      requestLog = join(ejabberd.dir, 'requests.log');
      writeFileSync(usersFile, JSON.stringify(USERS));
      await startInstance('A');
    });

    after(async () => {
      await Promise.all(components.map((component) => component.stop()));
      const secretsLeaked = everyComponent.filter((c) => PASSWORDS.some((pw) => c.logText().includes(pw)));
      if (ejabberd) {
        const log = ejabberd.log();
        await ejabberd.stop();
        assert.equal(secretsLeaked.length, 0, 'a component log contains a password');
        for (const password of PASSWORDS) assert.ok(!log.includes(password), 'the ejabberd log contains a password');
      }
    });

    test('right password: logged in', async () => {
      const result = await login('alice', USERS.alice!);
      assert.equal(result.ok, true, `condition ${result.condition}`);
      const { op, user, server, answer } = requests().at(-1)!;
      assert.deepEqual({ op, user, server, answer }, { op: 'auth', user: 'alice', server: 'localhost', answer: '1' });
    });

    test('wrong password: not-authorized, and not logged as a backend error', async () => {
      const result = await login('alice', 'wrong');
      assert.equal(result.ok, false);
      assert.equal(result.condition, 'not-authorized');
      const unknown = await login('nobody', 'whatever');
      assert.equal(unknown.condition, 'not-authorized');
      await ejabberd.waitForLog('Failed c2s PLAIN authentication for nobody@localhost', 5000);
      assert.doesNotMatch(ejabberd.log(), /auth backend error/);
    });

    test('password with colons', async () => {
      assert.equal((await login('carol', USERS.carol!)).ok, true);
      assert.equal((await login('carol', 'a:b::c')).ok, false);
    });

    test('UTF-8 password', async () => {
      assert.equal((await login('dmitri', USERS.dmitri!)).ok, true);
      assert.equal((await login('dmitri', USERS.dmitri!.normalize('NFD'))).ok, false);
    });

    test('20 concurrent logins', async () => {
      const names = Object.keys(USERS).filter((name) => name.startsWith('user'));
      const started = Date.now();
      const results = await Promise.all(names.map((name) => login(name, USERS[name]!)));
      assert.deepEqual(
        results.map((r) => r.ok),
        names.map(() => true),
        `conditions: ${results.map((r) => r.condition).join(',')}`,
      );
      const wrong = await Promise.all(names.slice(0, 5).map((name) => login(name, 'nope')));
      assert.ok(wrong.every((r) => r.condition === 'not-authorized'));
      assert.ok(Date.now() - started < 15_000);
    });

    test('isuser, tryregister, setpass, removeuser through mod_register', async () => {
      const session = await XmppSession.login({ host: ejabberd.host, port: ejabberd.c2sPort, domain: 'localhost', username: 'alice', password: USERS.alice! });
      try {
        const mark = requests().length;
        // Asking for the registration form makes ejabberd call user_exists for the asker.
        const form = await session.iq(`<iq type='get' id='reg1' to='localhost'><query xmlns='jabber:iq:register'/></iq>`);
        assert.equal(form.attrs.type, 'result');
        assert.ok(form.getChild('query', 'jabber:iq:register')?.getChild('registered'), 'alice is reported as registered');
        assert.ok(requests(mark).some((r) => r.op === 'isuser' && r.user === 'alice' && r.answer === '1'));

        // Registering a name that exists: isuser says yes -> conflict, no tryregister.
        const taken = await iqOrError(session, register('bob', 'other-pw-77ab'));
        assert.equal(taken, 'conflict');
        assert.ok(requests(mark).some((r) => r.op === 'isuser' && r.user === 'bob' && r.answer === '1'));

        // A new name: isuser says no, then tryregister.
        assert.equal(await iqOrError(session, register('newbie', 'fresh-pw-5e1f')), 'result');
        const newbie = requests(mark).filter((r) => r.user === 'newbie');
        assert.deepEqual(
          newbie.map((r) => `${r.op}=${r.answer}`),
          ['isuser=0', 'tryregister=1'],
        );
        assert.equal((await login('newbie', 'fresh-pw-5e1f')).ok, true);

        // Changing one's own password: setpass.
        assert.equal(await iqOrError(session, register('alice', 'new-alice-pw-93c2')), 'result');
        assert.ok(requests(mark).some((r) => r.op === 'setpass' && r.user === 'alice' && r.answer === '1'));
        assert.equal((await login('alice', 'new-alice-pw-93c2')).ok, true);
        assert.equal(await iqOrError(session, register('alice', USERS.alice!)), 'result');
      } finally {
        await session.close();
      }

      // Cancelling one's registration: removeuser.
      const doomed = await XmppSession.login({ host: ejabberd.host, port: ejabberd.c2sPort, domain: 'localhost', username: 'doomed', password: USERS.doomed! });
      const mark = requests().length;
      await iqOrError(doomed, `<iq type='set' id='rm1' to='localhost'><query xmlns='jabber:iq:register'><remove/></query></iq>`).catch(() => 'closed');
      await doomed.close().catch(() => {});
      await waitFor(() => requests(mark).some((r) => r.op === 'removeuser' && r.user === 'doomed' && r.answer === '1'), 5000, 'removeuser request');
      assert.equal((await login('doomed', USERS.doomed!)).condition, 'not-authorized');
    });

    test('no answer within the shim timeout: refused, logged as a backend error, the server keeps serving', async () => {
      const result = await login('sleeper', USERS.sleeper!);
      assert.equal(result.ok, false);
      assert.equal(result.condition, 'not-authorized');
      assert.ok(result.elapsedMs >= SHIM_TIMEOUT_MS - 100 && result.elapsedMs < SHIM_TIMEOUT_MS + 1500, `took ${result.elapsedMs} ms`);
      await ejabberd.waitForLog(`auth for sleeper@localhost via ${domain}: no answer within ${SHIM_TIMEOUT_MS} ms`, 5000);
      // The late answer is dropped by ejabberd; the next logins are answered normally.
      await waitFor(() => requests().some((r) => r.user === 'sleeper'), 5000, 'the sleeper answer');
      assert.equal((await login('alice', USERS.alice!)).ok, true);
    });

    test('component stopped: logins refused at once, ejabberd keeps serving; back when it reconnects', async () => {
      await Promise.all(components.map((component) => component.stop()));
      assert.ok(components.every((component) => !component.running));
      components = [];
      const from = ejabberd.log().length;

      const refused = await login('alice', USERS.alice!);
      assert.equal(refused.ok, false);
      assert.equal(refused.condition, 'not-authorized');
      assert.ok(refused.elapsedMs < 1500, `refusal took ${refused.elapsedMs} ms`);
      await ejabberd.waitForLog(`auth for alice@localhost via ${domain}: component not connected`, 5000, from);
      assert.ok((await timeToStreamFeatures({ host: ejabberd.host, port: ejabberd.c2sPort, domain: 'localhost', timeoutMs: 5000 })) < 1000);

      await startInstance('A2');
      assert.equal((await login('alice', USERS.alice!)).ok, true);
    });

    test('two instances for one domain: load-balanced; one killed, logins continue', async () => {
      const [first] = components;
      const second = await startInstance('B');
      await ejabberd.waitForLog(/Accepted external component[^\n]*auth\.localhost[\s\S]*Accepted external component[^\n]*auth\.localhost/, 5000);

      let mark = requests().length;
      const names = Object.keys(USERS).filter((name) => name.startsWith('user'));
      const both = await Promise.all(names.map((name) => login(name, USERS[name]!)));
      assert.ok(both.every((r) => r.ok));
      const servedBy = new Set(requests(mark).map((r) => r.pid));
      assert.equal(servedBy.size, 2, 'requests reached the script processes of both instances');

      await first!.kill();
      await sleep(300); // ejabberd drops the dead instance's route when its socket closes
      mark = requests().length;
      const sequential = [];
      for (const name of names.slice(0, 5)) sequential.push(await login(name, USERS[name]!));
      const concurrent = await Promise.all(names.map((name) => login(name, USERS[name]!)));
      assert.ok(
        [...sequential, ...concurrent].every((r) => r.ok),
        'every login after the kill succeeded',
      );
      assert.equal(new Set(requests(mark).map((r) => r.pid)).size, 1, 'only the surviving instance answered');
      assert.ok(second!.running);
    });

    test('ejabberd log: no crash of a session or of the shim', () => {
      assert.doesNotMatch(ejabberd.log(), /CRASH REPORT|crashed|ejabberd_auth_external_component[^\n]*(?:badarg|undef|function_clause)/);
    });
  });

  describe(`${install.label}: the same ejabberd-protocol script on either path`, { timeout: 60_000 }, () => {
    const example = join(REPO_ROOT, 'examples/scripts/users_file_ejabberd.py');
    const addUser = join(REPO_ROOT, 'examples/scripts/users_file_add.py');
    const useExample = existsSync(example) && existsSync(addUser) && hasPython();
    let dir: string;
    let program: string;
    const servers: EjabberdServer[] = [];
    const accounts = { alice: USERS.alice!, carol: USERS.carol! };

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'extauth-script-'));
      if (useExample) {
        const usersFile = join(dir, 'users');
        for (const [user, password] of Object.entries(accounts)) {
          execFileSync('python3', [addUser, usersFile, `${user}@localhost`], {
            input: `${password}\n`,
            env: { ...process.env, USERS_FILE_ITERATIONS: '1000' },
            stdio: ['pipe', 'ignore', 'inherit'],
          });
        }
        program = `python3 ${example} ${usersFile}`;
      } else {
        const usersFile = join(dir, 'users.json');
        writeFileSync(usersFile, JSON.stringify(accounts));
        program = `${process.execPath} ${FIXTURE} ${usersFile}`;
      }
    });

    after(async () => {
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(dir, { recursive: true, force: true });
    });

    const check = async (server: EjabberdServer) => {
      const login = (username: string, password: string) =>
        saslPlainLogin({ host: server.host, port: server.c2sPort, domain: 'localhost', username, password, timeoutMs: 10_000 });
      assert.equal((await login('alice', accounts.alice)).ok, true);
      assert.equal((await login('carol', accounts.carol)).ok, true);
      assert.equal((await login('alice', 'wrong')).condition, 'not-authorized');
    };

    test("ejabberd's own extauth (auth_method: [external], extauth_program)", async (t) => {
      if (!useExample) t.diagnostic('examples/scripts/users_file_ejabberd.py or python3 missing: using the test fixture');
      const server = await EjabberdServer.start({ install, authMethod: 'external', extauthProgram: program, label: 'ejabberd (native extauth)' });
      servers.push(server);
      await check(server);
    });

    test('extauth-component (auth_method: [external_component])', async () => {
      const server = await EjabberdServer.start({ install, label: 'ejabberd (component)' });
      servers.push(server);
      const [domain, secret] = Object.entries(server.service.hosts)[0]!;
      const component = await ComponentProcess.start({ service: server.serviceUri, domain, secret, protocol: 'ejabberd', command: program });
      try {
        await check(server);
      } finally {
        await component.stop();
      }
    });
  });
}

function register(username: string, password: string): string {
  return `<iq type='set' id='reg-${username}' to='localhost'><query xmlns='jabber:iq:register'><username>${username}</username><password>${password}</password></query></iq>`;
}

/** 'result', or the stanza error condition of the reply. */
async function iqOrError(session: XmppSession, stanza: string): Promise<string> {
  const reply = await session.iq(stanza);
  return reply.attrs.type === 'result' ? 'result' : (stanzaErrorCondition(reply) ?? `type=${reply.attrs.type}`);
}

async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function hasPython(): boolean {
  try {
    execFileSync('python3', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
