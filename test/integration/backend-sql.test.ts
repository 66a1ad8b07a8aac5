// examples/backends/sql/auth-sql against a real PostgreSQL (a throwaway cluster), spoken to
// directly over its stdin/stdout in each protocol.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createUsersTable, djangoPbkdf2With, INJECTION_USERS, makeAccounts, scramKeysByPython, type Account } from '../../support/backends/accounts.js';
import { AUTH_SQL, backendSkipReason, PostgresCluster } from '../../support/backends/postgres.js';
import { ScriptClient, scramFields, type Answer, type Protocol, type Request } from '../../support/backends/script-client.js';

const skip = backendSkipReason();

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('auth-sql against PostgreSQL', { skip }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  const clients: ScriptClient[] = [];
  const stderrs: string[] = [];
  /** SCRAM keys the script answered: secrets, never in its stderr. */
  const scramKeys: string[] = [];

  const start = (protocol: Protocol, env: Record<string, string> = {}) => {
    const client = new ScriptClient(AUTH_SQL, protocol, { AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_BCRYPT_COST: '4', ...env });
    clients.push(client);
    return client;
  };
  const finish = async (client: ScriptClient) => {
    const { code } = await client.close();
    stderrs.push(client.stderr);
    return code;
  };

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = await makeAccounts();
  });
  after(async () => {
    for (const client of clients) client.kill();
    await cluster?.destroy();
    // No password, old or new, ever reaches the script's stderr (the component's log).
    const all = stderrs.join('\n') + clients.map((c) => c.stderr).join('\n');
    for (const account of accounts ?? []) assert.ok(!all.includes(account.password), `stderr holds the password of ${account.user}`);
    assert.ok(!all.includes('n3w:pässword'));
    for (const key of scramKeys) assert.ok(!all.includes(key), 'stderr holds a SCRAM key');
  });

  /**
   * A role's password as PostgreSQL itself stores it with scram-sha-256: a SCRAM secret made by a
   * third party (SASLprep, salt and iterations PostgreSQL's own), read from pg_authid.
   */
  const postgresSecret = async (role: string, password: string): Promise<string> => {
    const admin = await cluster.client();
    try {
      await admin.query(`SET password_encryption = 'scram-sha-256'`);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password.replaceAll("'", "''")}'`);
      const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
      return String(rows[0]!.rolpassword);
    } finally {
      await admin.end();
    }
  };

  for (const protocol of ['generic', 'tagged'] as const) {
    test(`${protocol}: scram credentials from Django PBKDF2 rows and PostgreSQL's own SCRAM secrets; none for other rows or hashes`, async () => {
      await createUsersTable(cluster, accounts);
      // An ASCII password, and one that SASLprep changes (a compatibility character, a non-ASCII space).
      const ascii = await postgresSecret('scram_ascii', 'pg-pass');
      const prepped = await postgresSecret('scram_prepped', 'Ⅸ\u00a0pässwörd');
      assert.match(ascii, /^SCRAM-SHA-256\$4096:/);
      await cluster.sql(`INSERT INTO users (username, password_hash) VALUES ('pgsecret', $1), ('pgprepped', $2), ('djangosha1', $3)`, [
        ascii,
        prepped,
        djangoPbkdf2With('sha1', 'sha1 pass', 'oldsalt', 1200),
      ]);
      const c = start(protocol);
      const scram = async (user: string, hash = 'sha-256') => {
        const answer = await c.ask({ kind: 'scram', user, hash });
        const fields = scramFields(answer);
        if (fields) scramKeys.push(fields.storedKey.toString('base64'), fields.serverKey.toString('base64'));
        return { answer, fields };
      };

      // Django pbkdf2_sha256: the keys a SCRAM client derives from the password (by Python).
      for (const a of accounts.filter((a) => a.hash.startsWith('pbkdf2_sha256$'))) {
        const { fields } = await scram(a.user);
        assert.ok(fields, `${a.scheme}: credentials`);
        const [, iterations, salt] = a.hash.split('$');
        assert.equal(fields.iterations, Number(iterations));
        assert.deepEqual(fields.salt, Buffer.from(salt!));
        assert.deepEqual(
          { storedKey: fields.storedKey, serverKey: fields.serverKey },
          scramKeysByPython('sha256', a.password, fields.salt, fields.iterations),
          a.scheme,
        );
      }
      // PostgreSQL's secret: answered as stored, and PLAIN verifies against it -- with SASLprep
      // applied as PostgreSQL applied it, so the raw and the normalized password both log in.
      const { answer } = await scram('pgsecret');
      const [, iterationsAndSalt, keys] = ascii.split('$');
      assert.equal(answer, `1:${iterationsAndSalt}:${keys}`);
      assert.equal(await c.ask({ kind: 'auth', user: 'pgsecret', password: 'pg-pass' }), '1');
      assert.equal(await c.ask({ kind: 'auth', user: 'pgsecret', password: 'pg-pasS' }), '0');
      assert.ok(scramFields((await scram('pgprepped')).answer));
      assert.equal(await c.ask({ kind: 'auth', user: 'pgprepped', password: 'Ⅸ\u00a0pässwörd' }), '1');
      assert.equal(await c.ask({ kind: 'auth', user: 'pgprepped', password: 'IX pässwörd' }), '1');
      assert.equal(await c.ask({ kind: 'auth', user: 'pgprepped', password: 'Ⅸ pässwort' }), '0');
      // A pbkdf2_sha1 row holds SCRAM-SHA-1's salted password.
      const sha1 = (await scram('djangosha1', 'sha-1')).fields;
      assert.deepEqual(sha1 && { storedKey: sha1.storedKey, serverKey: sha1.serverKey }, scramKeysByPython('sha1', 'sha1 pass', Buffer.from('oldsalt'), 1200));

      // No credentials: bcrypt and argon2 rows, rows with no usable hash, unknown users, another hash.
      for (const a of accounts.filter((a) => !a.hash.startsWith('pbkdf2_sha256$'))) assert.equal((await scram(a.user)).answer, '0', a.scheme);
      for (const user of ['disabled', 'nohash', 'empty', 'badparams', 'nobody', `' OR '1'='1`]) assert.equal((await scram(user)).answer, '0', user);
      for (const hash of ['sha-1', 'sha-512']) {
        assert.equal((await scram('django', hash)).answer, '0', `Django pbkdf2_sha256, ${hash}`);
        assert.equal((await scram('pgsecret', hash)).answer, '0', `SCRAM-SHA-256 secret, ${hash}`);
      }
      assert.equal((await scram('djangosha1', 'sha-256')).answer, '0');

      // setpass keeps each format; the new credentials are what a client derives from the new password.
      assert.equal(await c.ask({ kind: 'setpass', user: 'django', password: 'n3w:pässword' }), '1');
      const django = String((await cluster.sql(`SELECT password_hash FROM users WHERE username = 'django'`)).rows[0]!.password_hash);
      assert.match(django, /^pbkdf2_sha256\$1000\$[A-Za-z0-9]{22}\$/);
      const renewed = (await scram('django')).fields!;
      assert.deepEqual({ storedKey: renewed.storedKey, serverKey: renewed.serverKey }, scramKeysByPython('sha256', 'n3w:pässword', renewed.salt, 1000));
      assert.equal(await c.ask({ kind: 'setpass', user: 'pgsecret', password: 'n3w:pässword' }), '1');
      const secret = String((await cluster.sql(`SELECT password_hash FROM users WHERE username = 'pgsecret'`)).rows[0]!.password_hash);
      assert.match(secret, /^SCRAM-SHA-256\$4096:/);
      assert.notEqual(secret, ascii);
      assert.equal(await c.ask({ kind: 'auth', user: 'pgsecret', password: 'n3w:pässword' }), '1');
      assert.equal(await c.ask({ kind: 'auth', user: 'pgsecret', password: 'pg-pass' }), '0');
      // PostgreSQL accepts the new secret as a role's password and logs that role in with it.
      await cluster.sql(`ALTER ROLE scram_ascii PASSWORD '${secret}'`);
      const login = await cluster.client(cluster.url('scram_ascii', 'n3w:pässword'));
      await login.end();
      assert.equal(await finish(c), 0);
    });
  }

  test('scram while the database is down: an error (tagged) or a non-zero exit (generic), never 0', async () => {
    await createUsersTable(cluster, accounts);
    const tagged = start('tagged');
    const generic = start('generic');
    assert.ok(scramFields(await tagged.ask({ kind: 'scram', user: 'django' })));
    assert.ok(scramFields(await generic.ask({ kind: 'scram', user: 'django' })));
    await cluster.stopServer();
    try {
      assert.equal(await tagged.ask({ kind: 'scram', user: 'django' }), 'E');
      assert.equal(await tagged.ask({ kind: 'scram', user: 'laravel' }), 'E');
      await assert.rejects(generic.ask({ kind: 'scram', user: 'django' }), /script exited \(code 1/);
      assert.equal(generic.arrivals.length, 1, 'nothing was answered after the outage');
      stderrs.push(generic.stderr);
    } finally {
      await cluster.startServer();
    }
    assert.ok(scramFields(await tagged.ask({ kind: 'scram', user: 'django' })), 'the same process answers once the database is back');
    assert.equal(await finish(tagged), 0);
  });

  for (const protocol of ['generic', 'ejabberd', 'tagged'] as const) {
    test(`${protocol}: every request kind, every hash format, UTF-8, unknown users and injection attempts`, async () => {
      await createUsersTable(cluster, accounts);
      const c = start(protocol);
      const ask = (r: Request) => c.ask(r);
      for (const a of accounts) {
        assert.equal(await ask({ kind: 'auth', user: a.user, password: a.password }), '1', `${a.scheme}: right password`);
        assert.equal(await ask({ kind: 'auth', user: a.user, password: `${a.password}x` }), '0', `${a.scheme}: wrong password`);
        assert.equal(await ask({ kind: 'auth', user: a.user, password: '' }), '0', `${a.scheme}: empty password`);
        assert.equal(await ask({ kind: 'isuser', user: a.user }), '1', `${a.scheme}: isuser`);
      }
      // Without a domain column the server part is not matched.
      assert.equal(await ask({ kind: 'auth', user: 'rails', server: 'other.example', password: 'rails pass' }), '1');
      for (const user of ['disabled', 'nohash', 'empty', 'badparams']) {
        assert.equal(await ask({ kind: 'auth', user, password: '' }), '0', `${user}: no usable hash`);
        assert.equal(await ask({ kind: 'isuser', user }), '1');
      }
      assert.equal(await ask({ kind: 'auth', user: 'nobody', password: 'x' }), '0');
      assert.equal(await ask({ kind: 'isuser', user: 'nobody' }), '0');
      assert.equal(await ask({ kind: 'setpass', user: 'nobody', password: 'x' }), '0');
      assert.equal(await ask({ kind: 'removeuser', user: 'nobody' }), '0');
      assert.equal(await ask({ kind: 'isuser', user: 'Rails' }), '0', 'user names are matched exactly');

      const before = (await cluster.sql('SELECT username, password_hash FROM users ORDER BY id')).rows;
      for (const user of INJECTION_USERS) {
        assert.equal(await ask({ kind: 'auth', user, password: `' OR '1'='1` }), '0', user);
        assert.equal(await ask({ kind: 'isuser', user }), '0', user);
        assert.equal(await ask({ kind: 'setpass', user, password: 'x' }), '0', user);
        assert.equal(await ask({ kind: 'removeuser', user }), '0', user);
      }
      assert.deepEqual((await cluster.sql('SELECT username, password_hash FROM users ORDER BY id')).rows, before, 'injection attempts changed nothing');

      // setpass keeps each row's scheme and cost parameters.
      for (const a of accounts) {
        assert.equal(await ask({ kind: 'setpass', user: a.user, password: 'n3w:pässword' }), '1', `${a.scheme}: setpass`);
        const [row] = (await cluster.sql('SELECT password_hash FROM users WHERE username = $1', [a.user])).rows;
        const stored = String(row!.password_hash);
        assert.ok(stored.startsWith(a.prefix), `${a.scheme}: the new hash ${stored} keeps the prefix ${a.prefix}`);
        assert.ok(!stored.includes('n3w:pässword'));
        assert.equal(await ask({ kind: 'auth', user: a.user, password: a.password }), '0', `${a.scheme}: old password after setpass`);
        assert.equal(await ask({ kind: 'auth', user: a.user, password: 'n3w:pässword' }), '1', `${a.scheme}: new password after setpass`);
      }
      // A row without a usable hash gets a bcrypt one.
      for (const user of ['nohash', 'badparams']) {
        assert.equal(await ask({ kind: 'setpass', user, password: 'first' }), '1', user);
        assert.match(String((await cluster.sql(`SELECT password_hash FROM users WHERE username = $1`, [user])).rows[0]!.password_hash), /^\$2b\$04\$/);
        assert.equal(await ask({ kind: 'auth', user, password: 'first' }), '1', user);
      }

      // tryregister inserts a bcrypt row, refuses an existing user; removeuser deletes.
      assert.equal(await ask({ kind: 'tryregister', user: 'neu', password: 'fr€sh:pw' }), '1');
      assert.match(String((await cluster.sql(`SELECT password_hash FROM users WHERE username = 'neu'`)).rows[0]!.password_hash), /^\$2b\$04\$/);
      assert.equal(await ask({ kind: 'tryregister', user: 'neu', password: 'other' }), '0');
      assert.equal(await ask({ kind: 'tryregister', user: 'laravel', password: 'hijack' }), '0');
      assert.equal(await ask({ kind: 'auth', user: 'laravel', password: 'hijack' }), '0');
      assert.equal(await ask({ kind: 'auth', user: 'neu', password: 'fr€sh:pw' }), '1');
      assert.equal(await ask({ kind: 'isuser', user: 'neu' }), '1');
      assert.equal(await ask({ kind: 'removeuser', user: 'neu' }), '1');
      assert.equal(await ask({ kind: 'removeuser', user: 'neu' }), '0');
      assert.equal(await ask({ kind: 'isuser', user: 'neu' }), '0');
      assert.equal(await ask({ kind: 'auth', user: 'neu', password: 'fr€sh:pw' }), '0');
      assert.equal(await finish(c), 0, 'exits 0 when stdin ends');
    });
  }

  test('tagged: many requests at once over a connection pool, answered out of order', async () => {
    await createUsersTable(cluster, accounts);
    const c = start('tagged', { AUTH_SQL_POOL_SIZE: '4' });
    const burst = accounts.flatMap((a) => [
      { r: { kind: 'auth', user: a.user, password: a.password } as Request, want: '1' },
      { r: { kind: 'auth', user: a.user, password: 'nope' } as Request, want: '0' },
      { r: { kind: 'isuser', user: a.user } as Request, want: '1' },
    ]);
    const answers = await Promise.all(burst.map(({ r }) => c.ask(r)));
    assert.deepEqual(
      answers,
      burst.map(({ want }) => want),
    );

    // A row lock held by another session blocks a setpass for that user; an auth for another user
    // sent after it is answered first.
    const locker = await cluster.client();
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM users WHERE username = 'rails' FOR UPDATE`);
    const blocked = c.ask({ kind: 'setpass', user: 'rails', password: 'changed' }, 'blocked');
    await waitFor(
      'the setpass to wait on the row lock',
      async () =>
        Number(
          (await cluster.sql(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'extauth auth-sql'`)).rows[0]!.n,
        ) > 0,
    );
    assert.equal(await c.ask({ kind: 'auth', user: 'spring', password: 'spring-pass' }, 'quick'), '1');
    await locker.query('COMMIT');
    await locker.end();
    assert.equal(await blocked, '1');
    assert.ok(c.arrivals.indexOf('quick') < c.arrivals.indexOf('blocked'), `answers arrived as ${c.arrivals.slice(-2).join(', ')}`);
    assert.equal(await finish(c), 0);
  });

  test('a slow database holds the answer (never a refusal) until it answers', async () => {
    await createUsersTable(cluster, accounts);
    for (const protocol of ['generic', 'tagged'] as const) {
      const c = start(protocol);
      assert.equal(await c.ask({ kind: 'isuser', user: 'rails' }), '1'); // connected
      const locker = await cluster.client();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
      let settled: Answer | undefined;
      const pending = c.ask({ kind: 'auth', user: 'rails', password: 'rails pass' }).then((a) => (settled = a));
      await waitFor(
        'the query to wait on the table lock',
        async () =>
          Number(
            (await cluster.sql(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'extauth auth-sql'`)).rows[0]!
              .n,
          ) > 0,
      );
      assert.equal(settled, undefined, 'no answer while the database does not answer');
      await locker.query('ROLLBACK');
      await locker.end();
      assert.equal(await pending, '1');
      assert.equal(await finish(c), 0);
    }
  });

  test('tagged: the database stopped mid-load gives errors, never a refusal, then recovers in the same process', async () => {
    await createUsersTable(cluster, accounts);
    const c = start('tagged', { AUTH_SQL_POOL_SIZE: '4' });
    const seen: Array<{ want: string; got: Answer; phase: string }> = [];
    let phase = 'up';
    let running = true;
    const load = (async () => {
      while (running) {
        const startedIn = phase; // a round sent before the stop may still be answered from the database
        const round = await Promise.all([
          c.ask({ kind: 'auth', user: 'rails', password: 'rails pass' }).then((got) => ({ want: '1', got })),
          c.ask({ kind: 'auth', user: 'rails', password: 'wrong' }).then((got) => ({ want: '0', got })),
          c.ask({ kind: 'isuser', user: 'django' }).then((got) => ({ want: '1', got })),
          c.ask({ kind: 'auth', user: 'symfony', password: 'argon:pass' }).then((got) => ({ want: '1', got })),
        ]);
        seen.push(...round.map((r) => ({ ...r, phase: startedIn })));
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await waitFor('answers before the stop', () => seen.filter((s) => s.phase === 'up').length >= 40 || undefined);
    phase = 'stopping';
    await cluster.stopServer();
    phase = 'down';
    await waitFor('errors while the database is down', () => seen.filter((s) => s.phase === 'down' && s.got === 'E').length >= 8 || undefined);
    await cluster.startServer();
    phase = 'restarted';
    await waitFor(
      'logins again after the restart',
      () => seen.filter((s) => s.phase === 'restarted' && s.want === '1' && s.got === '1').length >= 20 || undefined,
    );
    running = false;
    await load;
    for (const s of seen) {
      if (s.got !== 'E') assert.equal(s.got, s.want, `${s.phase}: a wrong answer`);
    }
    assert.ok(seen.filter((s) => s.phase === 'up').every((s) => s.got === s.want));
    assert.ok(
      seen.filter((s) => s.phase === 'down').every((s) => s.got === 'E'),
      'every request sent while down is an error',
    );
    assert.ok(c.running, 'the process is kept through the outage');
    assert.match(c.stderr, /auth-sql: backend failed: /);
    assert.equal(await finish(c), 0);
  });

  for (const protocol of ['generic', 'ejabberd'] as const) {
    test(`${protocol}: the database stopped gives no answer and a non-zero exit; a new process works once it is back`, async () => {
      await createUsersTable(cluster, accounts);
      const c = start(protocol);
      assert.equal(await c.ask({ kind: 'auth', user: 'django', password: 'django pass' }), '1');
      await cluster.stopServer();
      await assert.rejects(c.ask({ kind: 'auth', user: 'django', password: 'django pass' }), /script exited \(code 1/);
      assert.equal(c.arrivals.length, 1, 'nothing was answered after the outage');
      assert.match(c.stderr, /auth-sql: backend failed: .*exiting so that the component restarts this script/);
      stderrs.push(c.stderr);
      const down = start(protocol);
      await assert.rejects(down.ask({ kind: 'isuser', user: 'django' }), /script exited \(code 1/);
      stderrs.push(down.stderr);
      await cluster.startServer();
      const again = start(protocol);
      assert.equal(await again.ask({ kind: 'auth', user: 'django', password: 'django pass' }), '1');
      assert.equal(await finish(again), 0);
    });
  }

  test('a domain column: the same user name on two servers is two accounts', async () => {
    await cluster.sql('DROP SCHEMA IF EXISTS site CASCADE');
    await cluster.sql('CREATE SCHEMA site');
    await cluster.sql('CREATE TABLE site.accounts (login text NOT NULL, realm text NOT NULL, secret text NOT NULL, PRIMARY KEY (login, realm))');
    const [rails, symfony] = [accounts.find((a) => a.user === 'rails')!, accounts.find((a) => a.user === 'symfony')!];
    await cluster.sql('INSERT INTO site.accounts VALUES ($1, $2, $3), ($1, $4, $5)', ['alice', 'a.example', rails.hash, 'b.example', symfony.hash]);
    const c = start('tagged', {
      AUTH_SQL_TABLE: 'site.accounts',
      AUTH_SQL_USER_COLUMN: 'login',
      AUTH_SQL_DOMAIN_COLUMN: 'realm',
      AUTH_SQL_HASH_COLUMN: 'secret',
    });
    assert.equal(await c.ask({ kind: 'auth', user: 'alice', server: 'a.example', password: rails.password }), '1');
    assert.equal(await c.ask({ kind: 'auth', user: 'alice', server: 'b.example', password: rails.password }), '0');
    assert.equal(await c.ask({ kind: 'auth', user: 'alice', server: 'b.example', password: symfony.password }), '1');
    assert.equal(await c.ask({ kind: 'isuser', user: 'alice', server: 'c.example' }), '0');
    assert.equal(await c.ask({ kind: 'tryregister', user: 'alice', server: 'c.example', password: 'pw' }), '1');
    assert.equal(await c.ask({ kind: 'tryregister', user: 'alice', server: 'c.example', password: 'pw' }), '0');
    assert.equal(await c.ask({ kind: 'removeuser', user: 'alice', server: 'a.example' }), '1');
    assert.equal(await c.ask({ kind: 'isuser', user: 'alice', server: 'a.example' }), '0');
    assert.equal(await c.ask({ kind: 'isuser', user: 'alice', server: 'b.example' }), '1');
    assert.equal(Number((await cluster.sql('SELECT count(*) AS n FROM site.accounts')).rows[0]!.n), 2);
    assert.equal(await finish(c), 0);
  });

  test('a read-only role answers auth and isuser; what it may not do is an error, not a refusal', async () => {
    await createUsersTable(cluster, accounts);
    await cluster.sql('DROP ROLE IF EXISTS xmpp_auth_ro');
    await cluster.sql(`CREATE ROLE xmpp_auth_ro LOGIN PASSWORD 'ro-secret'`);
    await cluster.sql('GRANT SELECT (username, password_hash) ON users TO xmpp_auth_ro');
    const c = start('tagged', { AUTH_DATABASE_URL: cluster.url('xmpp_auth_ro', 'ro-secret') });
    assert.equal(await c.ask({ kind: 'auth', user: 'laravel', password: 'rasmuslerdorf' }), '1');
    assert.equal(await c.ask({ kind: 'isuser', user: 'laravel' }), '1');
    assert.equal(await c.ask({ kind: 'setpass', user: 'laravel', password: 'x' }), 'E');
    assert.equal(await c.ask({ kind: 'tryregister', user: 'newbie', password: 'x' }), 'E');
    assert.equal(await c.ask({ kind: 'removeuser', user: 'laravel' }), 'E');
    assert.match(c.stderr, /42501/);
    assert.equal(await finish(c), 0);
  });

  test('configuration errors: one line naming the variable, exit 2', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ AUTH_DATABASE_URL: '' }, /AUTH_DATABASE_URL is required/],
      [{ AUTH_DATABASE_URL: 'mysql://x' }, /AUTH_DATABASE_URL must be a postgres/],
      [{ AUTH_SQL_TABLE: 'users; DROP TABLE users' }, /AUTH_SQL_TABLE must be a table name/],
      [{ AUTH_SQL_USER_COLUMN: 'user"name' }, /AUTH_SQL_USER_COLUMN must be a column name/],
      [{ AUTH_SQL_DOMAIN_COLUMN: 'a.b' }, /AUTH_SQL_DOMAIN_COLUMN must be a column name/],
      [{ AUTH_SQL_POOL_SIZE: '0' }, /AUTH_SQL_POOL_SIZE must be an integer/],
      [{ EXTERNAL_AUTH_PROTOCOL: 'lines' }, /EXTERNAL_AUTH_PROTOCOL must be generic, ejabberd or tagged/],
    ];
    for (const [env, message] of cases) {
      const c = start('generic', env);
      const { code } = await c.exited;
      assert.equal(code, 2, `${JSON.stringify(env)}: ${c.stderr}`);
      assert.match(c.stderr, message);
      assert.equal(c.stderr.trim().split('\n').length, 1);
    }
  });
});
