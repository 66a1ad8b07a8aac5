// SCRAM credentials from the backends through the built component: a `scram` query answered from
// a Django PBKDF2 row and from a secret PostgreSQL made (auth-sql), or from an HTTP service
// (auth-http), in generic and tagged; `false` where a row holds no credentials for the hash; an
// outage or a malformed answer from the service an error of type wait, never `false`; and the keys
// nowhere in the component's output.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { createUsersTable, makeAccounts, scramKeysByPython, type Account } from '../../support/backends/accounts.js';
import { AccountService, MALFORMED_SCRAM } from '../../support/backends/http-service.js';
import { AUTH_HTTP, AUTH_SQL, backendSkipReason, PostgresCluster } from '../../support/backends/postgres.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

const skip = backendSkipReason();

/** 'true', 'false', or the stanza error condition. */
function outcome(reply: Element): string {
  return resultOf(reply) ?? `${errorOf(reply).type}/${errorOf(reply).condition}`;
}

/** The credentials a `result='true'` reply carries, decoded. */
function credentialsOf(reply: Element): { iterations: number; salt: Buffer; storedKey: Buffer; serverKey: Buffer } {
  const scram = reply.getChild('scram', 'urn:x-extauth:0');
  assert.ok(scram, `no scram child in ${reply.toString()}`);
  assert.equal(scram.attrs.result, 'true');
  return {
    iterations: Number(scram.attrs.iterations),
    salt: Buffer.from(String(scram.attrs.salt), 'base64'),
    storedKey: Buffer.from(String(scram.attrs['stored-key']), 'base64'),
    serverKey: Buffer.from(String(scram.attrs['server-key']), 'base64'),
  };
}

let nextId = 0;
/** Sends `<scram user server hash/>` (iq get) as the server would and resolves with the reply. */
function askScram(h: Harness, user: string, hash = 'sha-256'): Promise<Element> {
  const id = `scram${nextId++}`;
  const attr = (text: string) => text.replaceAll('&', '&amp;').replaceAll("'", '&apos;').replaceAll('<', '&lt;');
  return h.server.request(
    `<iq type='get' id='${id}' from='example.com' to='auth.example.com'><scram xmlns='urn:x-extauth:0' user='${attr(user)}' server='example.com' hash='${hash}'/></iq>`,
    id,
  );
}

/** Asks until the answer is not an outage; every answer before it must be of type wait. */
async function untilAnswered(ask: () => Promise<Element>, what: string): Promise<Element> {
  const seen: string[] = [];
  for (;;) {
    const reply = await ask();
    const result = outcome(reply);
    if (!result.startsWith('wait/')) return reply;
    seen.push(result);
    if (seen.length > 400) assert.fail(`${what}: no answer; last ${seen.slice(-5).join(', ')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('SCRAM credentials from the backends through the component', { skip }, () => {
  let cluster: PostgresCluster;
  let accounts: Account[];
  let pgSecret: string;
  const harnesses: Harness[] = [];
  /** Every key answered: none may appear in the component's output. */
  const keys: string[] = [];

  before(async () => {
    cluster = await PostgresCluster.start();
    accounts = await makeAccounts();
    const admin = await cluster.client();
    try {
      await admin.query(`SET password_encryption = 'scram-sha-256'`);
      await admin.query(`CREATE ROLE scram_role LOGIN PASSWORD 'role pass'`);
      pgSecret = String((await admin.query(`SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_role'`)).rows[0]!.rolpassword);
    } finally {
      await admin.end();
    }
  });
  beforeEach(async () => {
    if (cluster && !existsSync(path.join(cluster.dataDir, 'postmaster.pid'))) await cluster.startServer();
  });
  after(async () => {
    for (const h of harnesses) {
      const output = h.output();
      for (const key of keys) assert.ok(!output.includes(key), "a SCRAM key in the component's output");
      await h.cleanup();
    }
    await cluster?.destroy();
  });

  const remember = (c: { storedKey: Buffer; serverKey: Buffer }) => keys.push(c.storedKey.toString('base64'), c.serverKey.toString('base64'));

  for (const protocol of ['generic', 'tagged'] as const) {
    test(`auth-sql, ${protocol}: credentials from a Django row and a PostgreSQL secret, false for the rest, an outage never false`, async () => {
      await createUsersTable(cluster, accounts);
      await cluster.sql(`INSERT INTO users (username, password_hash) VALUES ('pgrole', $1)`, [pgSecret]);
      const h = await startHarness({
        command: AUTH_SQL,
        env: {
          EXTERNAL_AUTH_PROTOCOL: protocol,
          EXTERNAL_AUTH_PROCESSES: '1',
          EXTERNAL_AUTH_TIMEOUT: '5',
          AUTH_DATABASE_URL: cluster.url(),
          AUTH_SQL_BCRYPT_COST: '4',
        },
      });
      harnesses.push(h);

      const django = accounts.find((a) => a.user === 'django')!;
      const fromDjango = credentialsOf(await askScram(h, 'django'));
      remember(fromDjango);
      assert.equal(fromDjango.iterations, 1000);
      assert.deepEqual(fromDjango.salt, Buffer.from(django.hash.split('$')[2]!));
      assert.deepEqual(
        { storedKey: fromDjango.storedKey, serverKey: fromDjango.serverKey },
        scramKeysByPython('sha256', django.password, fromDjango.salt, fromDjango.iterations),
      );

      const fromPostgres = credentialsOf(await askScram(h, 'pgrole'));
      remember(fromPostgres);
      const [, iterationsAndSalt, storedAndServer] = pgSecret.split('$');
      const [iterations, salt] = iterationsAndSalt!.split(':');
      const [storedKey, serverKey] = storedAndServer!.split(':');
      assert.deepEqual(fromPostgres, {
        iterations: Number(iterations),
        salt: Buffer.from(salt!, 'base64'),
        storedKey: Buffer.from(storedKey!, 'base64'),
        serverKey: Buffer.from(serverKey!, 'base64'),
      });

      for (const [user, hash] of [
        ['laravel', 'sha-256'],
        ['symfony', 'sha-256'],
        ['nobody', 'sha-256'],
        ['nohash', 'sha-256'],
        ['django', 'sha-1'],
        ['django', 'sha-512'],
        ['pgrole', 'sha-512'],
      ] as const) {
        assert.equal(outcome(await askScram(h, user, hash)), 'false', `${user} ${hash}`);
      }
      // PLAIN keeps working next to SCRAM, against the same rows.
      assert.equal(outcome(await h.ask({ user: 'pgrole', password: 'role pass' })), 'true');
      assert.equal(outcome(await h.ask({ user: 'django', password: django.password })), 'true');

      await cluster.stopServer();
      try {
        const down = outcome(await askScram(h, 'django'));
        assert.match(down, /^wait\/(internal-server-error|remote-server-timeout)$/, 'the database down is an outage, never false');
      } finally {
        await cluster.startServer();
      }
      const back = await untilAnswered(() => askScram(h, 'django'), 'scram once the database is back');
      assert.deepEqual(credentialsOf(back), fromDjango);
    });
  }

  test('auth-http, tagged: the service credentials, false, and a malformed or failing response an outage', async () => {
    const service = new AccountService('tok');
    await service.start();
    try {
      const credentials = {
        iterations: 4096,
        salt: Buffer.from('service salt').toString('base64'),
        storedKey: Buffer.alloc(32, 0x3c).toString('base64'),
        serverKey: Buffer.alloc(32, 0x4d).toString('base64'),
      };
      keys.push(credentials.storedKey, credentials.serverKey, Buffer.alloc(32, 1).toString('base64'));
      service.scram.set('alice@example.com sha-256', credentials);
      const h = await startHarness({
        command: AUTH_HTTP,
        env: { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', EXTERNAL_AUTH_TIMEOUT: '2', AUTH_HTTP_URL: service.url, AUTH_HTTP_TOKEN: 'tok' },
      });
      harnesses.push(h);
      const reply = await askScram(h, 'alice');
      const scram = reply.getChild('scram', 'urn:x-extauth:0')!;
      assert.deepEqual(
        {
          result: scram.attrs.result,
          iterations: scram.attrs.iterations,
          salt: scram.attrs.salt,
          stored: scram.attrs['stored-key'],
          server: scram.attrs['server-key'],
        },
        { result: 'true', iterations: '4096', salt: credentials.salt, stored: credentials.storedKey, server: credentials.serverKey },
      );
      assert.deepEqual(service.requests.at(-1)!.body, { kind: 'scram', user: 'alice', server: 'example.com', hash: 'sha-256' });
      assert.equal(outcome(await askScram(h, 'alice', 'sha-512')), 'false');
      assert.equal(outcome(await askScram(h, 'bob')), 'false');
      for (const user of [...Object.keys(MALFORMED_SCRAM), 'err500', 'garbage']) {
        assert.equal(outcome(await askScram(h, user)), 'wait/internal-server-error', user);
      }
      assert.equal(resultOf(await askScram(h, 'alice')), 'true', 'the same process still answers');
    } finally {
      await service.stop();
    }
  });
});
