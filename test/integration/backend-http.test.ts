// examples/backends/http/auth-http against a local HTTP service, spoken to directly over its
// stdin/stdout in each protocol.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AccountService, MALFORMED_SCRAM } from '../../support/backends/http-service.js';
import { AUTH_HTTP } from '../../support/backends/postgres.js';
import { ScriptClient, type Protocol } from '../../support/backends/script-client.js';
import { freePorts } from '../../support/ports.js';

const TOKEN = 'service-token-7Hq';
const PASSWORD = 'pä:ss wörd € 😀 :';
/** SCRAM credentials the service holds, as it sends them (base64 with padding). */
const CREDENTIALS = {
  iterations: 4096,
  salt: Buffer.from('QSXCR+Q6sek8bf92', 'base64').toString('base64'),
  storedKey: Buffer.alloc(32, 0xa7).toString('base64'),
  serverKey: Buffer.alloc(32, 0x5c).toString('base64'),
};
const CREDENTIALS_512 = {
  iterations: 10_000,
  salt: 'c2FsdA==',
  storedKey: Buffer.alloc(64, 0xb1).toString('base64'),
  serverKey: Buffer.alloc(64, 0xc2).toString('base64'),
};

describe('auth-http against an HTTP service', () => {
  let service: AccountService;
  const clients: ScriptClient[] = [];
  const start = (protocol: Protocol, env: Record<string, string> = {}) => {
    const client = new ScriptClient(AUTH_HTTP, protocol, { AUTH_HTTP_URL: service.url, AUTH_HTTP_TOKEN: TOKEN, ...env });
    clients.push(client);
    return client;
  };

  before(async () => {
    service = new AccountService(TOKEN);
    await service.start();
  });
  after(async () => {
    for (const client of clients) client.kill();
    await service.stop();
    const stderr = clients.map((c) => c.stderr).join('\n');
    assert.ok(!stderr.includes(PASSWORD) && !stderr.includes('pä:ss'), "no password in the script's stderr");
    assert.ok(!stderr.includes(TOKEN), "no token in the script's stderr");
    for (const key of [CREDENTIALS.storedKey, CREDENTIALS.serverKey, CREDENTIALS_512.storedKey, Buffer.alloc(32, 1).toString('base64')]) {
      assert.ok(!stderr.includes(key) && !stderr.includes(key.slice(0, 12)), "no SCRAM key in the script's stderr");
    }
  });

  for (const protocol of ['generic', 'tagged'] as const) {
    test(`${protocol}: scram forwards the hash and answers the service's credentials, or 0`, async () => {
      service.scram.clear();
      service.scram.set('alice@example.com sha-256', CREDENTIALS);
      service.scram.set('alice@example.com sha-512', CREDENTIALS_512);
      service.requests.length = 0;
      const c = start(protocol);
      assert.equal(
        await c.ask({ kind: 'scram', user: 'alice', hash: 'sha-256' }),
        `1:4096:${CREDENTIALS.salt}:${CREDENTIALS.storedKey}:${CREDENTIALS.serverKey}`,
      );
      assert.deepEqual(service.requests.at(-1)!.body, { kind: 'scram', user: 'alice', server: 'example.com', hash: 'sha-256' });
      assert.equal(
        await c.ask({ kind: 'scram', user: 'alice', hash: 'sha-512' }),
        `1:10000:c2FsdA==:${CREDENTIALS_512.storedKey}:${CREDENTIALS_512.serverKey}`,
      );
      assert.equal(await c.ask({ kind: 'scram', user: 'alice', hash: 'sha-1' }), '0');
      assert.equal(await c.ask({ kind: 'scram', user: 'alice', server: 'other.example', hash: 'sha-256' }), '0');
      assert.equal(await c.ask({ kind: 'scram', user: 'nobody', hash: 'sha-256' }), '0');
      assert.equal((await c.close()).code, 0);
    });
  }

  test('tagged: a scram response that is not valid credentials is an error, never 0 or a made-up answer', async () => {
    const c = start('tagged', { AUTH_HTTP_TIMEOUT: '0.5' });
    for (const user of [...Object.keys(MALFORMED_SCRAM), 'err500', 'garbage', 'noresult', 'stringresult', 'redirect', 'hang']) {
      assert.equal(await c.ask({ kind: 'scram', user, hash: 'sha-256' }), 'E', user);
    }
    service.release();
    // The right credentials for another hash are the wrong length for this one.
    service.scram.set('alice@example.com sha-1', CREDENTIALS);
    assert.equal(await c.ask({ kind: 'scram', user: 'alice', hash: 'sha-1' }), 'E');
    assert.match(c.stderr, /auth-http: backend failed: (scram response has no base64 "(salt|storedKey|serverKey)"|SCRAM .*)/);
    assert.equal((await c.close()).code, 0);
  });

  test('generic: a malformed scram response gives no answer and a non-zero exit', async () => {
    service.accounts.set('alice@example.com', PASSWORD);
    for (const user of ['scram-short-key', 'scram-unpadded', 'scram-iterations-string']) {
      const c = start('generic');
      assert.equal(await c.ask({ kind: 'isuser', user: 'alice' }), '1');
      await assert.rejects(c.ask({ kind: 'scram', user, hash: 'sha-256' }), /script exited \(code 1/, user);
      assert.equal(c.arrivals.length, 1);
    }
  });

  for (const protocol of ['generic', 'ejabberd', 'tagged'] as const) {
    test(`${protocol}: every request kind, UTF-8 passwords, the JSON the service receives`, async () => {
      service.accounts.clear();
      service.accounts.set('alice@example.com', PASSWORD);
      service.requests.length = 0;
      const c = start(protocol);
      assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: PASSWORD }), '1');
      assert.deepEqual(service.requests.at(-1), {
        authorization: `Bearer ${TOKEN}`,
        contentType: 'application/json',
        body: { kind: 'auth', user: 'alice', server: 'example.com', password: PASSWORD },
      });
      assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: 'pä:ss' }), '0');
      assert.equal(await c.ask({ kind: 'auth', user: 'alice', server: 'other.example', password: PASSWORD }), '0');
      assert.equal(await c.ask({ kind: 'auth', user: 'nobody', password: PASSWORD }), '0');
      assert.equal(await c.ask({ kind: 'isuser', user: 'alice' }), '1');
      assert.deepEqual(service.requests.at(-1)!.body, { kind: 'isuser', user: 'alice', server: 'example.com' });
      assert.equal(await c.ask({ kind: 'isuser', user: 'nobody' }), '0');
      assert.equal(await c.ask({ kind: 'setpass', user: 'alice', password: 'n€w' }), '1');
      assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: 'n€w' }), '1');
      assert.equal(await c.ask({ kind: 'setpass', user: 'nobody', password: 'x' }), '0');
      assert.equal(await c.ask({ kind: 'tryregister', user: 'bob', password: '' }), '1');
      assert.deepEqual(service.requests.at(-1)!.body, { kind: 'tryregister', user: 'bob', server: 'example.com', password: '' });
      assert.equal(await c.ask({ kind: 'tryregister', user: 'bob', password: 'x' }), '0');
      assert.equal(await c.ask({ kind: 'removeuser', user: 'bob' }), '1');
      assert.equal(await c.ask({ kind: 'removeuser', user: 'bob' }), '0');
      assert.equal((await c.close()).code, 0);
    });
  }

  test('tagged: each way the service can fail is an error, never a refusal, and the process goes on', async () => {
    service.accounts.set('alice@example.com', PASSWORD);
    const c = start('tagged', { AUTH_HTTP_TIMEOUT: '0.5' });
    for (const user of ['err500', 'garbage', 'noresult', 'stringresult', 'redirect', 'hang']) {
      assert.equal(await c.ask({ kind: 'auth', user, password: PASSWORD }), 'E', user);
      assert.equal(await c.ask({ kind: 'isuser', user }), 'E', user);
    }
    service.release();
    const wrongToken = start('tagged', { AUTH_HTTP_TOKEN: 'not-the-token' });
    assert.equal(await wrongToken.ask({ kind: 'auth', user: 'alice', password: PASSWORD }), 'E');
    assert.equal((await wrongToken.close()).code, 0);
    assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: PASSWORD }), '1', 'still serving');
    assert.match(
      c.stderr,
      /auth-http: backend failed: (HTTP status 500|response is not JSON|response has no boolean "result"|request failed|no response within 0.5 s)/,
    );
    assert.equal((await c.close()).code, 0);
  });

  test('tagged: requests run concurrently; a slow one does not hold up the others', async () => {
    service.accounts.set('hang@example.com', 'slow-pw');
    const c = start('tagged', { AUTH_HTTP_TIMEOUT: '60' });
    const slow = [c.ask({ kind: 'auth', user: 'hang', password: 'slow-pw' }, 's1'), c.ask({ kind: 'auth', user: 'hang', password: 'wrong' }, 's2')];
    await service.whenHeld(2);
    const quick = await Promise.all(Array.from({ length: 10 }, (_, i) => c.ask({ kind: 'auth', user: 'alice', password: i % 2 ? PASSWORD : 'x' })));
    assert.deepEqual(
      quick,
      Array.from({ length: 10 }, (_, i) => (i % 2 ? '1' : '0')),
    );
    assert.ok(!c.arrivals.includes('s1') && !c.arrivals.includes('s2'));
    service.release();
    assert.deepEqual(await Promise.all(slow), ['1', '0']);
    assert.equal((await c.close()).code, 0);
  });

  test('tagged: a service that is down, then back', async () => {
    const [port] = await freePorts(1);
    const down = new AccountService(TOKEN);
    const c = start('tagged', { AUTH_HTTP_URL: `http://127.0.0.1:${port}/xmpp/auth` });
    assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: PASSWORD }), 'E');
    await down.start(port);
    try {
      down.accounts.set('alice@example.com', PASSWORD);
      assert.equal(await c.ask({ kind: 'auth', user: 'alice', password: PASSWORD }), '1');
    } finally {
      assert.equal((await c.close()).code, 0);
      await down.stop();
    }
  });

  for (const protocol of ['generic', 'ejabberd'] as const) {
    test(`${protocol}: a failing service gives no answer and a non-zero exit`, async () => {
      for (const user of ['err500', 'garbage', 'hang']) {
        const c = start(protocol, { AUTH_HTTP_TIMEOUT: '0.5' });
        assert.equal(await c.ask({ kind: 'isuser', user: 'alice' }), '1');
        await assert.rejects(c.ask({ kind: 'auth', user, password: PASSWORD }), /script exited \(code 1/, user);
        assert.equal(c.arrivals.length, 1);
      }
      service.release();
    });
  }

  test('configuration errors: one line naming the variable, exit 2', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ AUTH_HTTP_URL: '' }, /AUTH_HTTP_URL is required/],
      [{ AUTH_HTTP_URL: 'not a url' }, /AUTH_HTTP_URL is not a valid URL/],
      [{ AUTH_HTTP_URL: 'ftp://example.com/' }, /AUTH_HTTP_URL must be an http/],
      [{ AUTH_HTTP_TIMEOUT: '0' }, /AUTH_HTTP_TIMEOUT must be a number of seconds/],
      [{ AUTH_HTTP_TIMEOUT: 'soon' }, /AUTH_HTTP_TIMEOUT must be a number of seconds/],
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
