// End to end from a PostgreSQL table: c2s clients log in to a real Prosody and a real ejabberd,
// whose shims ask the component, which asks examples/backends/sql/auth-sql, which reads a web
// application's user table (bcrypt, argon2id and Django PBKDF2 rows) in a throwaway PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createUsersTable, makeAccounts, type Account } from '../backends/accounts.js';
import { AUTH_SQL, backendSkipReason, PostgresCluster } from '../backends/postgres.js';
import { ComponentProcess } from '../support/component.js';
import { EjabberdServer, ejabberdSkipReason } from '../support/ejabberd.js';
import { ProsodyServer, prosodySkipReason, randomSecret, startComponentFor } from '../support/prosody.js';
import { registerAccount, saslPlainLogin, XmppSession } from '../support/xmpp-client.js';

const backendSkip = backendSkipReason();
/** SASLprep (Prosody) refuses some code points, emoji among them: those accounts are left out. */
const saslSafe = (a: Account) => !/\p{Extended_Pictographic}/u.test(a.password);

async function eventually(what: string, attempt: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await attempt())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Prosody logins from a PostgreSQL table', { skip: backendSkip ?? prosodySkipReason(), timeout: 120_000 }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  let prosody: ProsodyServer;
  let component: ComponentProcess;
  const domain = 'auth.localhost';

  const login = (username: string, password: string) =>
    saslPlainLogin({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username, password, timeoutMs: 10_000 });

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = (await makeAccounts()).filter(saslSafe);
    await createUsersTable(cluster, accounts);
    prosody = await ProsodyServer.start({ components: { [domain]: randomSecret() }, authTimeout: 5, allowRegistration: true, label: 'prosody backend-sql' });
    component = await startComponentFor(prosody, {
      domain,
      command: AUTH_SQL,
      env: { EXTERNAL_AUTH_TIMEOUT: '2', EXTERNAL_AUTH_PROCESSES: '2', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' },
    });
  });
  after(async () => {
    const logs = `${component?.logText() ?? ''}${prosody?.logText() ?? ''}`;
    await component?.stop().catch(() => {});
    await prosody?.stop();
    await cluster?.destroy();
    for (const account of accounts ?? []) assert.ok(!logs.includes(account.password), `a log holds the password of ${account.user}`);
  });

  test('each hash format logs in; wrong passwords and unknown users are not-authorized', async () => {
    for (const account of accounts) {
      assert.deepEqual((await login(account.user, account.password)).ok, true, `${account.scheme} (${account.user})`);
      assert.equal((await login(account.user, `${account.password}!`)).condition, 'not-authorized', account.scheme);
    }
    assert.equal((await login('nobody', 'x')).condition, 'not-authorized');
    assert.equal((await login(`' OR '1'='1`, `' OR '1'='1`)).ok, false);
  });

  test('registration inserts a bcrypt row; a password change keeps the row\'s format', async () => {
    const address = { host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost };
    assert.equal((await registerAccount({ ...address, username: 'newbie', password: 'fresh:pw ü' })).attrs.type, 'result');
    const [fresh] = (await cluster.sql(`SELECT password_hash FROM users WHERE username = 'newbie'`)).rows;
    assert.match(String(fresh!.password_hash), /^\$2b\$04\$/);
    assert.equal((await login('newbie', 'fresh:pw ü')).ok, true);
    assert.equal((await registerAccount({ ...address, username: 'newbie', password: 'other' })).attrs.type, 'error', 'an existing user is refused');
    assert.equal((await login('newbie', 'other')).ok, false);

    const django = accounts.find((a) => a.user === 'django')!;
    const session = await XmppSession.login({ host: prosody.host, port: prosody.c2sPort, domain: prosody.vhost, username: django.user, password: django.password });
    try {
      const reply = await session.iq(`<iq type='set' to='localhost'><query xmlns='jabber:iq:register'><username>django</username><password>changed pw</password></query></iq>`);
      assert.equal(reply.attrs.type, 'result', reply.toString());
    } finally {
      await session.close();
    }
    const [row] = (await cluster.sql(`SELECT password_hash FROM users WHERE username = 'django'`)).rows;
    assert.match(String(row!.password_hash), /^pbkdf2_sha256\$1000\$/);
    assert.equal((await login('django', 'changed pw')).ok, true);
    assert.equal((await login('django', django.password)).condition, 'not-authorized');
  });

  test('the database stopped: temporary-auth-failure, never not-authorized; logins again once it is back', async () => {
    const rails = accounts.find((a) => a.user === 'rails')!;
    assert.equal((await login(rails.user, rails.password)).ok, true);
    await cluster.stopServer();
    try {
      for (let i = 0; i < 3; i++) {
        const result = await login(rails.user, rails.password);
        assert.equal(result.ok, false);
        assert.equal(result.condition, 'temporary-auth-failure');
      }
    } finally {
      await cluster.startServer();
    }
    await eventually('a login after the database restarted', async () => {
      const result = await login(rails.user, rails.password);
      if (!result.ok) assert.equal(result.condition, 'temporary-auth-failure');
      return result.ok;
    });
  });
});

describe('ejabberd logins from a PostgreSQL table', { skip: backendSkip ?? ejabberdSkipReason(), timeout: 120_000 }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  let ejabberd: EjabberdServer;
  let component: ComponentProcess;
  const domain = 'auth.localhost';
  const secret = randomSecret();

  const login = (username: string, password: string) =>
    saslPlainLogin({ host: ejabberd.host, port: ejabberd.c2sPort, domain: ejabberd.vhost, username, password, timeoutMs: 10_000 });

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = (await makeAccounts()).filter(saslSafe);
    await createUsersTable(cluster, accounts);
    ejabberd = await EjabberdServer.start({ shim: { component: domain, timeout: 5 }, service: { hosts: { [domain]: secret } }, label: 'ejabberd backend-sql' });
    component = await ComponentProcess.start({
      label: 'component for ejabberd',
      service: ejabberd.serviceUri,
      domain,
      secret,
      command: AUTH_SQL,
      protocol: 'ejabberd',
      env: { EXTERNAL_AUTH_TIMEOUT: '2', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' },
    });
  });
  after(async () => {
    await component?.stop().catch(() => {});
    await ejabberd?.stop();
    await cluster?.destroy();
  });

  test('each hash format logs in; wrong passwords and unknown users are refused', async () => {
    for (const account of accounts) {
      assert.equal((await login(account.user, account.password)).ok, true, `${account.scheme} (${account.user})`);
      assert.equal((await login(account.user, `${account.password}!`)).condition, 'not-authorized', account.scheme);
    }
    assert.equal((await login('nobody', 'x')).condition, 'not-authorized');
  });

  test('logins resume after the database is stopped and restarted', async () => {
    const symfony = accounts.find((a) => a.user === 'symfony')!;
    await cluster.stopServer();
    try {
      assert.equal((await login(symfony.user, symfony.password)).ok, false);
    } finally {
      await cluster.startServer();
    }
    await eventually('a login after the database restarted', async () => (await login(symfony.user, symfony.password)).ok);
  });
});
