// The backends run by the built component (generic protocol): a stopped database, a slow one and
// a hanging HTTP service reach the XMPP side as outages -- stanza errors of type wait -- never as
// result='false', and logins work again when the backend returns.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { createUsersTable, makeAccounts, type Account } from '../backends/accounts.js';
import { AccountService } from '../backends/http-service.js';
import { AUTH_HTTP, AUTH_SQL, backendSkipReason, PostgresCluster } from '../backends/postgres.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

const skip = backendSkipReason();

/** 'true', 'false', or the stanza error condition. */
function outcome(reply: Element): string {
  return resultOf(reply) ?? `${errorOf(reply).type}/${errorOf(reply).condition}`;
}

describe('the backends through the component', { skip }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  const harnesses: Harness[] = [];

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = await makeAccounts();
  });
  after(async () => {
    for (const h of harnesses) {
      const output = h.output();
      for (const account of accounts ?? []) assert.ok(!output.includes(account.password), `the component's output holds the password of ${account.user}`);
      await h.cleanup();
    }
    await cluster?.destroy();
  });

  test('auth-sql: logins, every kind, the database stopped (outage errors, never false) and restarted, a slow database past the timeout', async () => {
    await createUsersTable(cluster, accounts);
    const h = await startHarness({
      command: AUTH_SQL,
      env: { EXTERNAL_AUTH_PROTOCOL: 'generic', EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_TIMEOUT: '2', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' },
    });
    harnesses.push(h);
    const utf8 = accounts.find((a) => a.user === 'jürgen')!;
    const django = accounts.find((a) => a.user === 'django')!;
    assert.equal(outcome(await h.ask({ user: utf8.user, password: utf8.password })), 'true');
    assert.equal(outcome(await h.ask({ user: utf8.user, password: 'pä:ss' })), 'false');
    assert.equal(outcome(await h.ask({ user: django.user, password: django.password })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'nobody' })), 'false');
    assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c:1' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c:2' })), 'false');
    assert.equal(outcome(await h.ask({ kind: 'setpass', user: 'carol', password: 'c:3' })), 'true');
    assert.equal(outcome(await h.ask({ user: 'carol', password: 'c:3' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'removeuser', user: 'carol' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'carol' })), 'false');

    // The database goes away: each login is an outage, never a wrong password.
    await cluster.stopServer();
    const down = await Promise.all(Array.from({ length: 6 }, () => h.ask({ user: django.user, password: django.password })));
    for (const reply of down) assert.equal(outcome(reply), 'wait/internal-server-error');
    await h.waitForLog((line) => String(line.msg ?? '').length > 0 && JSON.stringify(line).includes('backend failed'));
    await cluster.startServer();
    // The component restarts the scripts with backoff; until one is up, still errors, never false.
    const seen: string[] = [];
    for (;;) {
      const result = outcome(await h.ask({ user: django.user, password: django.password }));
      seen.push(result);
      if (result === 'true') break;
      assert.match(result, /^wait\//, `after the restart: ${seen.join(', ')}`);
      if (seen.length > 400) assert.fail(`no login after the database came back: ${seen.slice(-5).join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(outcome(await h.ask({ user: django.user, password: 'wrong' })), 'false');

    // A slow database (a table lock held elsewhere) past the component's timeout.
    const locker = await cluster.client();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    try {
      assert.equal(outcome(await h.ask({ user: django.user, password: django.password })), 'wait/remote-server-timeout');
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    for (;;) {
      const result = outcome(await h.ask({ user: django.user, password: django.password }));
      if (result === 'true') break;
      assert.match(result, /^wait\//);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  test('auth-http: a service that errs or hangs past the timeout is an outage', async () => {
    const service = new AccountService('tok');
    await service.start();
    try {
      service.accounts.set('alice@example.com', 'pw:ä');
      const h = await startHarness({
        command: AUTH_HTTP,
        env: { EXTERNAL_AUTH_PROTOCOL: 'generic', EXTERNAL_AUTH_TIMEOUT: '1', AUTH_HTTP_URL: service.url, AUTH_HTTP_TOKEN: 'tok', AUTH_HTTP_TIMEOUT: '30' },
      });
      harnesses.push(h);
      assert.equal(outcome(await h.ask({ user: 'alice', password: 'pw:ä' })), 'true');
      assert.equal(outcome(await h.ask({ user: 'alice', password: 'pw' })), 'false');
      assert.equal(outcome(await h.ask({ user: 'err500', password: 'pw' })), 'wait/internal-server-error');
      assert.equal(outcome(await h.ask({ user: 'hang', password: 'pw' })), 'wait/remote-server-timeout');
      service.release();
      for (;;) {
        const result = outcome(await h.ask({ user: 'alice', password: 'pw:ä' }));
        if (result === 'true') break;
        assert.match(result, /^wait\//);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await service.stop();
    }
  });
});
