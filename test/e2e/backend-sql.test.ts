// End to end from a PostgreSQL table, once for every Prosody and every ejabberd installed: c2s
// clients log in to the real server, whose shim asks the component, which asks
// examples/backends/sql/auth-sql, which reads a web application's user table (bcrypt, argon2id and
// Django PBKDF2 rows) in a throwaway PostgreSQL. The component runs the script in tagged -- one
// process serving every login, a database failure answered as "my backend failed" and the process
// kept -- and then in the server's classic protocol (lockstep, the script restarted on a failure).
// With SCRAM turned on in the server (Prosody and ejabberd), Django-hashed rows and a secret PostgreSQL made log in with
// SCRAM-SHA-256 through a real client (Debian's python3-slixmpp), PLAIN not offered: the server
// gets the credentials through the component, and no password reaches the component or the script.
import assert from 'node:assert/strict';
import { after, before, describe, test as nodeTest } from 'node:test';
import { createUsersTable, makeAccounts, type Account } from '../../support/backends/accounts.js';
import { AUTH_SQL, backendSkipReason, PostgresCluster } from '../../support/backends/postgres.js';
import { ComponentProcess, type LogLine } from '../../support/component-process.js';
import { type EjabberdInstall, EjabberdServer, ejabberdTestTargets } from '../../support/ejabberd.js';
import { type ProsodyInstall, ProsodyServer, prosodyTestTargets, randomSecret, startComponentFor } from '../../support/prosody.js';
import { registerAccount, saslPlainLogin, XmppSession } from '../../support/xmpp-client.js';
import { type SaslLoginReport, slixmppLogin, slixmppSkipReason } from '../support/slixmpp.js';

const backendSkip = backendSkipReason();
/** SASLprep (Prosody) refuses some code points, emoji among them: those accounts are left out. */
const saslSafe = (a: Account) => !/\p{Extended_Pictographic}/u.test(a.password);
const DOMAIN = 'auth.localhost';
/** The component in tagged: one script process, requests pipelined to it. */
const TAGGED = { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', EXTERNAL_AUTH_TIMEOUT: '3' };
const SCRIPT_ENV = (cluster: PostgresCluster) => ({ AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' });

async function eventually(what: string, attempt: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await attempt())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Log lines saying the component restarted (or lost) a script process. */
function restarts(component: ComponentProcess): LogLine[] {
  return component.logLines.filter((l) => l.event === 'script.restarted' || l.event === 'script.exited' || l.event === 'script.hung');
}

const backendFailures = (component: ComponentProcess) => component.logLines.filter((l) => l.event === 'script.backend-error').length;

if (backendSkip) {
  describe('logins from a PostgreSQL table', { skip: backendSkip }, () => {});
} else {
  const prosody = prosodyTestTargets();
  if (prosody.missing) describe(`Prosody logins from a PostgreSQL table: ${prosody.missing}`, { skip: prosody.missing }, () => {});
  for (const install of prosody.installs) prosodySuite(install);
  const prosodyScramSkip = prosody.missing ?? slixmppSkipReason();
  if (prosodyScramSkip) describe(`Prosody SCRAM logins from a PostgreSQL table: ${prosodyScramSkip}`, { skip: prosodyScramSkip }, () => {});
  else for (const install of prosody.installs) prosodyScramSuite(install);
  const ejabberd = ejabberdTestTargets();
  if (ejabberd.missing) describe(`ejabberd logins from a PostgreSQL table: ${ejabberd.missing}`, { skip: ejabberd.missing }, () => {});
  for (const install of ejabberd.installs) ejabberdSuite(install);
  const slixmppMissing = slixmppSkipReason();
  const ejabberdScramSkip = ejabberd.missing ?? slixmppMissing;
  if (ejabberdScramSkip) describe(`ejabberd SCRAM logins from a PostgreSQL table: ${ejabberdScramSkip}`, { skip: ejabberdScramSkip }, () => {});
  else for (const install of ejabberd.installs) ejabberdScramSuite(install);
}

function prosodySuite(install: ProsodyInstall): void {
  // Each title names the Prosody it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: logins from a PostgreSQL table`, { timeout: 180_000 }, () => {
    let cluster: PostgresCluster;
    let accounts: Account[];
    let prosody: ProsodyServer;
    let component: ComponentProcess;
    const everyComponent: ComponentProcess[] = [];

    const login = (username: string, password: string) =>
      saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 10_000 });
    const startComponent = async (env: Record<string, string>) => {
      component = await startComponentFor(prosody, { domain: DOMAIN, command: AUTH_SQL, env: { ...env, ...SCRIPT_ENV(cluster) } });
      everyComponent.push(component);
    };

    before(async () => {
      ({ cluster, accounts } = await startUsersTable());
      prosody = await ProsodyServer.start({
        install,
        components: { [DOMAIN]: randomSecret() },
        authTimeout: 5,
        allowRegistration: true,
        label: `${install.label} backend-sql`,
      });
      await startComponent(TAGGED);
    });
    after(async () => {
      for (const c of everyComponent) await c.stop().catch(() => {});
      const logs = `${everyComponent.map((c) => c.logText()).join('')}${prosody?.logText() ?? ''}`;
      await prosody?.stop();
      await cluster?.destroy();
      for (const account of accounts ?? []) assert.ok(!logs.includes(account.password), `a log holds the password of ${account.user}`);
    });

    test('tagged, one process: each hash format logs in, also all at once; wrong passwords and unknown users are not-authorized', async () => {
      for (const account of accounts) {
        assert.deepEqual((await login(account.user, account.password)).ok, true, `${account.scheme} (${account.user})`);
        assert.equal((await login(account.user, `${account.password}!`)).condition, 'not-authorized', account.scheme);
      }
      assert.equal((await login('nobody', 'x')).condition, 'not-authorized');
      assert.equal((await login(`' OR '1'='1`, `' OR '1'='1`)).ok, false);
      const together = await Promise.all(accounts.flatMap((a) => [login(a.user, a.password), login(a.user, `${a.password}?`)]));
      assert.deepEqual(
        together.map((r) => r.ok || r.condition),
        accounts.flatMap(() => [true, 'not-authorized']),
      );
      assert.deepEqual(restarts(component), []);
    });

    test("tagged: registration inserts a bcrypt row; a password change keeps the row's format", async () => {
      const address = { host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost };
      assert.equal((await registerAccount({ ...address, username: 'newbie', password: 'fresh:pw ü' })).attrs.type, 'result');
      const [fresh] = (await cluster.sql(`SELECT password_hash FROM users WHERE username = 'newbie'`)).rows;
      assert.match(String(fresh!.password_hash), /^\$2b\$04\$/);
      assert.equal((await login('newbie', 'fresh:pw ü')).ok, true);
      assert.equal((await registerAccount({ ...address, username: 'newbie', password: 'other' })).attrs.type, 'error', 'an existing user is refused');
      assert.equal((await login('newbie', 'other')).ok, false);

      const django = accounts.find((a) => a.user === 'django')!;
      const session = await XmppSession.login({ ...address, username: django.user, password: django.password });
      try {
        const reply = await session.iq(
          `<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>django</username><password>changed pw</password></query></iq>`,
        );
        assert.equal(reply.attrs.type, 'result', reply.toString());
      } finally {
        await session.close();
      }
      const [row] = (await cluster.sql(`SELECT password_hash FROM users WHERE username = 'django'`)).rows;
      assert.match(String(row!.password_hash), /^pbkdf2_sha256\$1000\$/);
      assert.equal((await login('django', 'changed pw')).ok, true);
      assert.equal((await login('django', django.password)).condition, 'not-authorized');
    });

    test('tagged: the database stopped -- temporary-auth-failure, never not-authorized, the one process kept; logins again once it is back', async () => {
      const rails = accounts.find((a) => a.user === 'rails')!;
      assert.equal((await login(rails.user, rails.password)).ok, true);
      const failuresBefore = backendFailures(component);
      await cluster.stopServer();
      try {
        const down = await Promise.all(Array.from({ length: 6 }, () => login(rails.user, rails.password)));
        assert.deepEqual(
          down.map((r) => r.ok || r.condition),
          down.map(() => 'temporary-auth-failure'),
        );
      } finally {
        await cluster.startServer();
      }
      assert.ok(backendFailures(component) >= failuresBefore + 6, 'each login was the script saying its backend failed');
      await eventually('a login after the database restarted', async () => {
        const result = await login(rails.user, rails.password);
        if (!result.ok) assert.equal(result.condition, 'temporary-auth-failure');
        return result.ok;
      });
      assert.equal((await login(rails.user, 'wrong')).condition, 'not-authorized');
      assert.deepEqual(restarts(component), [], 'the script process was never restarted');
    });

    test('generic lockstep x 2: logins; the database stopped is temporary-auth-failure (the script exits and is restarted); logins again', async () => {
      await component.stop();
      await startComponent({ EXTERNAL_AUTH_PROTOCOL: 'generic', EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_TIMEOUT: '3' });
      const spring = accounts.find((a) => a.user === 'spring')!;
      await eventually('a login through the generic component', async () => (await login(spring.user, spring.password)).ok);
      assert.equal((await login(spring.user, 'wrong')).condition, 'not-authorized');
      await cluster.stopServer();
      try {
        for (let i = 0; i < 3; i++) assert.equal((await login(spring.user, spring.password)).condition, 'temporary-auth-failure');
      } finally {
        await cluster.startServer();
      }
      await eventually('a login after the database restarted', async () => {
        const result = await login(spring.user, spring.password);
        if (!result.ok) assert.equal(result.condition, 'temporary-auth-failure');
        return result.ok;
      });
      assert.ok(restarts(component).length > 0, 'the generic script exits on a database failure and is restarted');
    });
  });
}

function ejabberdSuite(install: EjabberdInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: logins from a PostgreSQL table`, { timeout: 180_000 }, () => {
    let cluster: PostgresCluster;
    let accounts: Account[];
    let ejabberd: EjabberdServer;
    let component: ComponentProcess;
    const everyComponent: ComponentProcess[] = [];
    const secret = randomSecret();

    const login = (username: string, password: string) =>
      saslPlainLogin({ host: ejabberd.host, port: ejabberd.c2sPort, domain: ejabberd.vhost, username, password, timeoutMs: 10_000 });
    const startComponent = async (protocol: 'generic' | 'ejabberd', env: Record<string, string>) => {
      component = await ComponentProcess.start({
        label: `component for ${install.label}`,
        service: ejabberd.serviceUri,
        domain: DOMAIN,
        secret,
        command: AUTH_SQL,
        protocol,
        env: { ...env, ...SCRIPT_ENV(cluster) },
      });
      everyComponent.push(component);
    };

    before(async () => {
      ({ cluster, accounts } = await startUsersTable());
      ejabberd = await EjabberdServer.start({
        install,
        shim: { component: DOMAIN, timeout: 5 },
        service: { hosts: { [DOMAIN]: secret } },
        label: `${install.label} backend-sql`,
      });
      await startComponent('generic', TAGGED);
    });
    after(async () => {
      for (const c of everyComponent) await c.stop().catch(() => {});
      const logs = everyComponent.map((c) => c.logText()).join('');
      await ejabberd?.stop();
      await cluster?.destroy();
      for (const account of accounts ?? []) assert.ok(!logs.includes(account.password), `a component log holds the password of ${account.user}`);
    });

    test('tagged, one process: each hash format logs in, also all at once; wrong passwords and unknown users are refused', async () => {
      for (const account of accounts) {
        assert.equal((await login(account.user, account.password)).ok, true, `${account.scheme} (${account.user})`);
        assert.equal((await login(account.user, `${account.password}!`)).condition, 'not-authorized', account.scheme);
      }
      assert.equal((await login('nobody', 'x')).condition, 'not-authorized');
      const together = await Promise.all(accounts.flatMap((a) => [login(a.user, a.password), login(a.user, `${a.password}?`)]));
      assert.deepEqual(
        together.map((r) => r.ok || r.condition),
        accounts.flatMap(() => [true, 'not-authorized']),
      );
      assert.deepEqual(restarts(component), []);
    });

    test('tagged: the database stopped -- refused, and logged by ejabberd as a backend error (not a wrong password); logins again, the one process kept', async () => {
      const symfony = accounts.find((a) => a.user === 'symfony')!;
      const from = ejabberd.log().length;
      await cluster.stopServer();
      try {
        // ejabberd's auth API is yes/no: the client sees not-authorized, the log says why.
        assert.equal((await login(symfony.user, symfony.password)).ok, false);
        await ejabberd.waitForLog(
          `auth for ${symfony.user}@${ejabberd.vhost} via ${DOMAIN}: component answered with error 'internal-server-error'`,
          10_000,
          from,
        );
      } finally {
        await cluster.startServer();
      }
      assert.ok(backendFailures(component) > 0);
      await eventually('a login after the database restarted', async () => (await login(symfony.user, symfony.password)).ok);
      assert.deepEqual(restarts(component), [], 'the script process was never restarted');
    });

    test('the ejabberd protocol, lockstep: logins; logins resume after the database is stopped and restarted', async () => {
      await component.stop();
      await startComponent('ejabberd', { EXTERNAL_AUTH_TIMEOUT: '3' });
      const spring = accounts.find((a) => a.user === 'spring')!;
      await eventually('a login through the ejabberd-protocol component', async () => (await login(spring.user, spring.password)).ok);
      assert.equal((await login(spring.user, 'wrong')).condition, 'not-authorized');
      await cluster.stopServer();
      try {
        assert.equal((await login(spring.user, spring.password)).ok, false);
      } finally {
        await cluster.startServer();
      }
      await eventually('a login after the database restarted', async () => (await login(spring.user, spring.password)).ok);
    });
  });
}

/** A fresh PostgreSQL cluster with the users table holding every account a SASL client can type. */
async function startUsersTable(): Promise<{ cluster: PostgresCluster; accounts: Account[] }> {
  const cluster = await PostgresCluster.start();
  const accounts = (await makeAccounts()).filter(saslSafe);
  await createUsersTable(cluster, accounts);
  return { cluster, accounts };
}

/** A row whose hash column holds a SCRAM secret PostgreSQL made itself, for the SCRAM suites. */
const PG_ROLE = { user: 'pgrole', password: 'role pass: ü' };
async function addPostgresScramRow(cluster: PostgresCluster): Promise<void> {
  await cluster.sql('INSERT INTO users (username, password_hash) VALUES ($1, $2)', [
    PG_ROLE.user,
    await postgresScramSecret(cluster, 'scram_role', PG_ROLE.password),
  ]);
}

/** A role's password as PostgreSQL itself stores it with scram-sha-256 (a SCRAM secret made by a third party), read from pg_authid. */
async function postgresScramSecret(cluster: PostgresCluster, role: string, password: string): Promise<string> {
  const admin = await cluster.client();
  try {
    await admin.query(`SET password_encryption = 'scram-sha-256'`);
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
    const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
    return String(rows[0]!.rolpassword);
  } finally {
    await admin.end();
  }
}

/** The kinds of the queries the component answered or failed (its per-query log lines). */
const queryKinds = (component: ComponentProcess) =>
  new Set(component.logLines.filter((l) => typeof l.kind === 'string' && 'outcome' in l).map((l) => String(l.kind)));

/**
 * SCRAM-SHA-256 logins against the users table: every row SCRAM can serve (Django pbkdf2_sha256,
 * and the PostgreSQL secret) logs in and refuses a wrong password; bcrypt/argon2 rows and an
 * unknown user are refused; the component was asked for credentials, never for a password.
 */
async function assertScramRows(
  accounts: Account[],
  login: (username: string, password: string) => Promise<SaslLoginReport>,
  component: ComponentProcess,
  assertOffered: (offered: string[]) => void,
): Promise<void> {
  const scramRows = [...accounts.filter((a) => a.hash.startsWith('pbkdf2_sha256$')), PG_ROLE];
  assert.ok(scramRows.length >= 3);
  for (const account of scramRows) {
    const report = await login(account.user, account.password);
    assert.equal(report.result, 'ok', `${account.user}: ${JSON.stringify(report)}`);
    assertOffered(report.offered);
    assert.deepEqual(pick(await login(account.user, `${account.password}!`)), { result: 'refused', condition: 'not-authorized' }, account.user);
  }
  for (const account of accounts.filter((a) => !a.hash.startsWith('pbkdf2_sha256$'))) {
    assert.deepEqual(pick(await login(account.user, account.password)), { result: 'refused', condition: 'not-authorized' }, account.scheme);
  }
  assert.deepEqual(pick(await login('nobody', 'x')), { result: 'refused', condition: 'not-authorized' });
  assert.ok(queryKinds(component).has('scram'));
  assert.ok(!queryKinds(component).has('auth'), `the component was asked ${[...queryKinds(component)].join(', ')}: never a password`);
}

function prosodyScramSuite(install: ProsodyInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: SCRAM-SHA-256 logins from a PostgreSQL table (external_auth_scram, PLAIN not offered)`, { timeout: 180_000 }, () => {
    let cluster: PostgresCluster;
    let accounts: Account[];
    let prosody: ProsodyServer;
    let component: ComponentProcess;

    const login = (username: string, password: string) =>
      slixmppLogin({ host: prosody.host, port: prosody.c2sPort, jid: `${username}@${prosody.vhost}`, mechanism: 'SCRAM-SHA-256', password });

    before(async () => {
      ({ cluster, accounts } = await startUsersTable());
      await addPostgresScramRow(cluster);
      prosody = await ProsodyServer.start({
        install,
        components: { [DOMAIN]: randomSecret() },
        authTimeout: 5,
        scram: ['sha-256'],
        allowUnencryptedPlain: false,
        label: `${install.label} backend-sql scram`,
      });
      component = await startComponentFor(prosody, { domain: DOMAIN, command: AUTH_SQL, env: { ...TAGGED, ...SCRIPT_ENV(cluster) } });
    });
    after(async () => {
      await component?.stop().catch(() => {});
      const logs = `${component?.logText() ?? ''}${component?.stderr ?? ''}${prosody?.logText() ?? ''}`;
      await prosody?.stop();
      await cluster?.destroy();
      for (const account of [...(accounts ?? []), PG_ROLE]) assert.ok(!logs.includes(account.password), `a log holds the password of ${account.user}`);
    });

    test('Django pbkdf2_sha256 rows and a PostgreSQL SCRAM secret log in; wrong passwords and bcrypt/argon2 rows are refused; no password reaches the component', async () => {
      await assertScramRows(accounts, login, component, (offered) => assert.deepEqual(offered, ['SCRAM-SHA-256'], 'PLAIN not offered'));
    });

    test('the database stopped: temporary-auth-failure, never not-authorized; logins again once it is back, the same process', async () => {
      const django = accounts.find((a) => a.user === 'django')!;
      await cluster.stopServer();
      try {
        assert.deepEqual(pick(await login(django.user, django.password)), { result: 'refused', condition: 'temporary-auth-failure' });
      } finally {
        await cluster.startServer();
      }
      await eventually('a SCRAM login after the database restarted', async () => (await login(django.user, django.password)).result === 'ok');
      assert.deepEqual(restarts(component), [], 'one process served it all');
    });
  });
}

function ejabberdScramSuite(install: EjabberdInstall): void {
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: SCRAM-SHA-256 logins from a PostgreSQL table (scram: true, PLAIN not offered)`, { timeout: 180_000 }, () => {
    let cluster: PostgresCluster;
    let accounts: Account[];
    let ejabberd: EjabberdServer;
    let component: ComponentProcess;
    const secret = randomSecret();

    const login = (username: string, password: string) =>
      slixmppLogin({ host: ejabberd.host, port: ejabberd.c2sPort, jid: `${username}@${ejabberd.vhost}`, mechanism: 'SCRAM-SHA-256', password });

    before(async () => {
      ({ cluster, accounts } = await startUsersTable());
      await addPostgresScramRow(cluster);
      ejabberd = await EjabberdServer.start({
        install,
        shim: { component: DOMAIN, timeout: 5, scram: true },
        service: { hosts: { [DOMAIN]: secret } },
        extraConfig: ['auth_scram_hash: sha256', 'disable_sasl_mechanisms: ["PLAIN", "X-OAUTH2"]'].join('\n'),
        label: `${install.label} backend-sql scram`,
      });
      component = await ComponentProcess.start({
        label: `component for ${install.label}`,
        service: ejabberd.serviceUri,
        domain: DOMAIN,
        secret,
        command: AUTH_SQL,
        protocol: 'generic',
        env: { ...TAGGED, ...SCRIPT_ENV(cluster) },
      });
    });
    after(async () => {
      await component?.stop().catch(() => {});
      const logs = `${component?.logText() ?? ''}${component?.stderr ?? ''}`;
      await ejabberd?.stop();
      await cluster?.destroy();
      for (const account of [...(accounts ?? []), PG_ROLE])
        assert.ok(!logs.includes(account.password), `a component log holds the password of ${account.user}`);
    });

    test('Django pbkdf2_sha256 rows and a PostgreSQL SCRAM secret log in; wrong passwords and bcrypt/argon2 rows are refused; no password reaches the component', async () => {
      await assertScramRows(accounts, login, component, (offered) => assert.ok(!offered.includes('PLAIN'), `offered: ${offered}`));
    });

    test('the database stopped: the login fails (ejabberd logs a backend error), and works again once it is back', async () => {
      const django = accounts.find((a) => a.user === 'django')!;
      const failuresBefore = backendFailures(component);
      await cluster.stopServer();
      try {
        assert.equal((await login(django.user, django.password)).result, 'refused');
        assert.ok(backendFailures(component) > failuresBefore, 'the script reported its backend failed');
      } finally {
        await cluster.startServer();
      }
      await eventually('a SCRAM login after the database restarted', async () => (await login(django.user, django.password)).result === 'ok');
      assert.deepEqual(restarts(component), [], 'one process served it all');
    });
  });
}

function pick(report: { result: string; condition: string | null }) {
  return { result: report.result, condition: report.condition };
}
