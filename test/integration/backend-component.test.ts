// The backends run by the built component, in generic (lockstep, processes restarted on a backend
// failure) and in tagged (one process serving many requests at once, a backend failure answered
// as `ID:E` and the process kept): a stopped database, a slow one and an erring or hanging HTTP
// service reach the XMPP side as outages -- stanza errors of type wait -- never as result='false',
// and logins work again when the backend returns.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { createUsersTable, INJECTION_USERS, makeAccounts, type Account } from '../../support/backends/accounts.js';
import { AccountService } from '../../support/backends/http-service.js';
import { AUTH_HTTP, AUTH_SQL, backendSkipReason, PostgresCluster } from '../../support/backends/postgres.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

const skip = backendSkipReason();

/** 'true', 'false', or the stanza error condition. */
function outcome(reply: Element): string {
  return resultOf(reply) ?? `${errorOf(reply).type}/${errorOf(reply).condition}`;
}

const TAGGED = { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1' };

/** The script processes the component started (its debug log names each), oldest first. */
function scriptPids(h: Harness): number[] {
  return h
    .logs()
    .filter((l) => l.event === 'script.started')
    .map((l) => Number(l.scriptPid));
}

/** One script process served everything: started once, never exited, never restarted. */
function assertOneProcessKept(h: Harness): void {
  assert.equal(scriptPids(h).length, 1, `script processes started: ${scriptPids(h).join(', ')}`);
  const restarts = h.logs().filter((l) => l.event === 'script.restarted' || l.event === 'script.exited' || l.event === 'script.hung');
  assert.deepEqual(
    restarts.map((l) => l.event),
    [],
    'the process was never restarted',
  );
}

/** Asks until the answer is 'true'; every answer before it must be an outage (type wait), never 'false'. */
async function untilTrue(ask: () => Promise<Element>, what: string): Promise<string[]> {
  const seen: string[] = [];
  for (;;) {
    const result = outcome(await ask());
    seen.push(result);
    if (result === 'true') return seen;
    assert.match(result, /^wait\//, `${what}: ${seen.join(', ')}`);
    if (seen.length > 400) assert.fail(`${what}: no login; last answers ${seen.slice(-5).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Phase = 'up' | 'stopping' | 'down' | 'starting' | 'back';
interface Sent {
  phase: Phase;
  result: string;
}

/**
 * Logins kept in flight by `workers` concurrent askers, each reply filed under the phase its
 * request was sent in. `when(predicate)` resolves once the replies so far satisfy it.
 */
class LoginLoad {
  phase: Phase = 'up';
  readonly replies: Sent[] = [];
  private running = true;
  private readonly waiters = new Set<() => void>();
  private readonly done: Promise<unknown>;

  constructor(workers: number, ask: (worker: number, i: number) => Promise<Element>) {
    this.done = Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = 0; this.running; i++) {
          const phase = this.phase;
          this.replies.push({ phase, result: outcome(await ask(w, i)) });
          for (const check of [...this.waiters]) check();
          // Paced: an outage answers at once, and a tight loop would only flood the logs.
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
    );
  }

  in(phase: Phase): string[] {
    return this.replies.filter((r) => r.phase === phase).map((r) => r.result);
  }

  when(what: string, predicate: (load: LoginLoad) => boolean, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; replies by phase: ${JSON.stringify(this.summary())}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  summary(): Record<string, Record<string, number>> {
    const counts: Record<string, Record<string, number>> = {};
    for (const { phase, result } of this.replies) {
      const byResult = (counts[phase] ??= {});
      byResult[result] = (byResult[result] ?? 0) + 1;
    }
    return counts;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

describe('the backends through the component', { skip }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  const harnesses: Harness[] = [];

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = await makeAccounts();
  });
  // A test that failed with the database stopped leaves it stopped: the next one starts it.
  beforeEach(async () => {
    if (cluster && !existsSync(path.join(cluster.dataDir, 'postmaster.pid'))) await cluster.startServer();
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
      env: {
        EXTERNAL_AUTH_PROTOCOL: 'generic',
        EXTERNAL_AUTH_PROCESSES: '2',
        EXTERNAL_AUTH_TIMEOUT: '2',
        AUTH_DATABASE_URL: cluster.url(),
        AUTH_SQL_BCRYPT_COST: '4',
      },
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
    // In generic the script exits on the failure: the request it held is an internal-server-error
    // at once; one queued behind a script still restarting (with backoff) may reach its timeout.
    await cluster.stopServer();
    try {
      const down = (await Promise.all(Array.from({ length: 6 }, () => h.ask({ user: django.user, password: django.password })))).map(outcome);
      for (const result of down) assert.match(result, /^wait\/(internal-server-error|remote-server-timeout)$/, down.join(', '));
      assert.ok(down.includes('wait/internal-server-error'), down.join(', '));
      await h.waitForLog(
        (line) => (line.event === 'script.stderr' || line.event === 'script.backend-error') && JSON.stringify(line).includes('backend failed'),
      );
    } finally {
      await cluster.startServer();
    }
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

  test('auth-sql in tagged, one process: every kind; many logins at once, each answered with its own result', async () => {
    await createUsersTable(cluster, accounts);
    const h = await startHarness({
      command: AUTH_SQL,
      env: { ...TAGGED, EXTERNAL_AUTH_TIMEOUT: '10', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' },
    });
    harnesses.push(h);
    // Right and wrong passwords for every hash format, interleaved, all in flight together.
    const asks = Array.from({ length: 4 }, () =>
      accounts.flatMap((a) => [
        { user: a.user, password: a.password, expected: 'true' },
        { user: a.user, password: `${a.password}x`, expected: 'false' },
      ]),
    ).flat();
    const replies = await Promise.all(asks.map(({ user, password }) => h.ask({ user, password })));
    assert.deepEqual(
      replies.map(outcome),
      asks.map((a) => a.expected),
    );
    const known = await Promise.all(accounts.map((a) => h.ask({ kind: 'isuser', user: a.user })));
    assert.deepEqual(
      known.map(outcome),
      accounts.map(() => 'true'),
    );
    for (const user of ['nobody', ...INJECTION_USERS.filter((u) => !u.includes(':'))]) {
      assert.equal(outcome(await h.ask({ kind: 'isuser', user })), 'false', user);
      assert.equal(outcome(await h.ask({ user, password: `' OR '1'='1` })), 'false', user);
    }
    assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c:1 ü' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'carol', password: 'c:2' })), 'false');
    assert.equal(outcome(await h.ask({ user: 'carol', password: 'c:1 ü' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'setpass', user: 'carol', password: 'c:3' })), 'true');
    assert.equal(outcome(await h.ask({ user: 'carol', password: 'c:1 ü' })), 'false');
    assert.equal(outcome(await h.ask({ user: 'carol', password: 'c:3' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'setpass', user: 'nobody', password: 'x' })), 'false');
    assert.equal(outcome(await h.ask({ kind: 'removeuser', user: 'carol' })), 'true');
    assert.equal(outcome(await h.ask({ kind: 'removeuser', user: 'carol' })), 'false');
    assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'carol' })), 'false');
    assertOneProcessKept(h);
  });

  test('auth-sql in tagged: the database stopped mid-load -- every reply an outage error, never false, the one process kept; logins again once it is back', async () => {
    await createUsersTable(cluster, accounts);
    const h = await startHarness({
      command: AUTH_SQL,
      env: { ...TAGGED, EXTERNAL_AUTH_TIMEOUT: '10', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4' },
    });
    harnesses.push(h);
    // Every request here is one the script must accept: any 'false' would be an outage read as a refusal.
    const load = new LoginLoad(8, (w, i) => {
      const account = accounts[(w + i) % accounts.length]!;
      return i % 4 === 3 ? h.ask({ kind: 'isuser', user: account.user }) : h.ask({ user: account.user, password: account.password });
    });
    try {
      await load.when('logins while the database is up', (l) => l.in('up').length >= 40);
      load.phase = 'stopping';
      await cluster.stopServer();
      load.phase = 'down';
      await load.when('replies while the database is down', (l) => l.in('down').length >= 40);
      load.phase = 'starting';
      await cluster.startServer();
      load.phase = 'back';
      await load.when('logins after the database came back', (l) => l.in('back').filter((r) => r === 'true').length >= 40);
    } finally {
      await load.stop();
    }
    const summary = JSON.stringify(load.summary());
    assert.ok(!load.replies.some((r) => r.result === 'false'), `a login was refused: ${summary}`);
    // Sent before the stop: accepted, or (the query cut off by the stop) an outage.
    for (const phase of ['up', 'stopping', 'starting', 'back'] as const) {
      for (const result of load.in(phase)) assert.match(result, /^(true|wait\/internal-server-error)$/, `${phase}: ${summary}`);
    }
    assert.ok(load.in('up').filter((r) => r === 'true').length >= 30, summary);
    // Sent while the database was down: each one the script's "my backend failed".
    assert.deepEqual([...new Set(load.in('down'))], ['wait/internal-server-error'], summary);
    assert.ok(h.logs().some((l) => l.event === 'script.backend-error'));
    // The same process answered before, during and after: nothing to restart.
    assertOneProcessKept(h);
    const after = await Promise.all(accounts.map((a) => h.ask({ user: a.user, password: a.password })));
    assert.deepEqual(
      after.map(outcome),
      accounts.map(() => 'true'),
    );
    assertOneProcessKept(h);
  });

  test('auth-sql in tagged: a query slower than the timeout is remote-server-timeout while other logins go on through the same process', async () => {
    const rails = accounts.find((a) => a.user === 'rails')!;
    await createUsersTable(cluster, [...accounts, { ...rails, user: 'slowpoke' }]);
    // Reading the slowpoke row takes 6 s (a lock, a slow disk); every other row is read at once.
    await cluster.sql(`CREATE OR REPLACE FUNCTION slow_for(name text, hash text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
      BEGIN IF name = 'slowpoke' THEN PERFORM pg_sleep(6); END IF; RETURN hash; END $$`);
    await cluster.sql('CREATE OR REPLACE VIEW slow_users AS SELECT username, slow_for(username, password_hash) AS password_hash FROM users');
    const h = await startHarness({
      command: AUTH_SQL,
      env: { ...TAGGED, EXTERNAL_AUTH_TIMEOUT: '3', AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_TABLE: 'slow_users' },
    });
    harnesses.push(h);
    assert.equal(outcome(await h.ask({ user: rails.user, password: rails.password })), 'true');
    let settled = false;
    const slow = h.ask({ user: 'slowpoke', password: rails.password }).finally(() => (settled = true));
    const meanwhile: string[] = [];
    while (!settled) meanwhile.push(outcome(await h.ask({ user: rails.user, password: rails.password })));
    assert.equal(outcome(await slow), 'wait/remote-server-timeout');
    assert.ok(meanwhile.length > 0);
    assert.deepEqual([...new Set(meanwhile)], ['true'], 'logins went on while the slow one waited');
    await h.waitForLog((l) => l.event === 'script.late-answer', 15_000);
    assert.equal(outcome(await h.ask({ user: rails.user, password: `${rails.password}!` })), 'false');
    assertOneProcessKept(h);
  });

  test('auth-http in tagged, one process: every kind; a service that errs, hangs or is down is an outage, the process kept', async () => {
    const service = new AccountService('tok');
    await service.start();
    try {
      service.accounts.set('alice@example.com', 'pw:ä');
      const env = { ...TAGGED, AUTH_HTTP_URL: service.url, AUTH_HTTP_TOKEN: 'tok' };
      const h = await startHarness({ command: AUTH_HTTP, env: { ...env, EXTERNAL_AUTH_TIMEOUT: '3', AUTH_HTTP_TIMEOUT: '30' } });
      harnesses.push(h);
      const alice = () => h.ask({ user: 'alice', password: 'pw:ä' });
      const [right, wrong] = await Promise.all([alice(), h.ask({ user: 'alice', password: 'pw' })]);
      assert.deepEqual([outcome(right), outcome(wrong)], ['true', 'false']);
      assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'alice' })), 'true');
      assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'nobody' })), 'false');
      assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'bob', password: 'b:1' })), 'true');
      assert.equal(outcome(await h.ask({ kind: 'tryregister', user: 'bob', password: 'b:2' })), 'false');
      assert.equal(outcome(await h.ask({ kind: 'setpass', user: 'bob', password: 'b:3 ü' })), 'true');
      assert.equal(outcome(await h.ask({ user: 'bob', password: 'b:3 ü' })), 'true');
      assert.equal(outcome(await h.ask({ kind: 'removeuser', user: 'bob' })), 'true');
      assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'bob' })), 'false');

      // Errors of the service: the script's "my backend failed", at once.
      for (const user of ['err500', 'garbage', 'noresult', 'redirect'])
        assert.equal(outcome(await h.ask({ user, password: 'pw' })), 'wait/internal-server-error', user);

      // A request that hangs past the component's timeout; the others go on meanwhile.
      let settled = false;
      const hung = h.ask({ user: 'hang', password: 'pw' }).finally(() => (settled = true));
      await service.whenHeld(1);
      const meanwhile: string[] = [];
      while (!settled) meanwhile.push(outcome(await alice()));
      assert.equal(outcome(await hung), 'wait/remote-server-timeout');
      assert.deepEqual([...new Set(meanwhile)], ['true']);
      service.release();
      await h.waitForLog((l) => l.event === 'script.late-answer', 15_000);

      // The service down, then back on its port.
      const port = service.port;
      await service.stop();
      assert.equal(outcome(await alice()), 'wait/internal-server-error');
      assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'alice' })), 'wait/internal-server-error');
      await service.start(port);
      await untilTrue(alice, 'after the service came back');
      assert.equal(outcome(await h.ask({ user: 'alice', password: 'pw' })), 'false');
      assertOneProcessKept(h);

      // The script's own timeout shorter than the component's: a hang is the script's "backend failed".
      const quick = await startHarness({ command: AUTH_HTTP, env: { ...env, EXTERNAL_AUTH_TIMEOUT: '10', AUTH_HTTP_TIMEOUT: '0.5' } });
      harnesses.push(quick);
      assert.equal(outcome(await quick.ask({ user: 'hang', password: 'pw' })), 'wait/internal-server-error');
      service.release();
      assert.equal(outcome(await quick.ask({ user: 'alice', password: 'pw:ä' })), 'true');
      assertOneProcessKept(quick);
    } finally {
      await service.stop();
    }
  });
});
