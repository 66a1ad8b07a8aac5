// The backends' shared pieces as pure functions: request parsing (examples/backends/lib/
// script-protocol.mjs) and the password hash schemes (examples/backends/lib/password-hashes.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BACKENDS, backendSkipReason } from '../../support/backends/postgres.js';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { djangoPbkdf2, djangoPbkdf2With, PHP_MANUAL_BCRYPT, scramKeysByPython } from '../../support/backends/accounts.js';

interface Parsed {
  kind: string;
  user: string;
  server: string;
  password?: Buffer;
  hash?: string;
  undecodable?: boolean;
}
interface Credentials {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}
const protocol = (await import(pathToFileURL(path.join(BACKENDS, 'lib/script-protocol.mjs')).href)) as {
  parseRequest(bytes: Buffer): Parsed | undefined;
  scramAnswer(hash: string, credentials: Credentials): string;
  BackendError: new (message: string) => Error;
};

describe('parsing a request', () => {
  const field = fc.string({ minLength: 1, unit: 'grapheme' }).filter((s) => !s.includes(':') && !/[\u0000-\u001f\u007f]/.test(s));

  test('user, server and a password with colons and any UTF-8 come back exactly', () => {
    fc.assert(
      fc.property(fc.constantFrom('auth', 'setpass', 'tryregister'), field, field, fc.string({ unit: 'grapheme' }), (kind, user, server, password) => {
        const parsed = protocol.parseRequest(Buffer.from(`${kind}:${user}:${server}:${password}`));
        assert.deepEqual(parsed, { kind, user, server, password: Buffer.from(password) });
      }),
    );
    fc.assert(
      fc.property(fc.constantFrom('isuser', 'removeuser'), field, field, (kind, user, server) => {
        assert.deepEqual(protocol.parseRequest(Buffer.from(`${kind}:${user}:${server}`)), { kind, user, server });
      }),
    );
  });

  test('malformed requests are refused', () => {
    for (const line of [
      '',
      'auth',
      'auth:alice',
      'auth:alice:example.com',
      'login:alice:example.com:pw',
      'isuser:alice:example.com:extra',
      'auth::example.com:pw',
      'AUTH:alice:example.com:pw',
    ]) {
      assert.equal(protocol.parseRequest(Buffer.from(line)), undefined, JSON.stringify(line));
    }
    // A user name that is not UTF-8 names no account.
    assert.equal(protocol.parseRequest(Buffer.from([...Buffer.from('isuser:'), 0xc3, 0x28, ...Buffer.from(':example.com')]))?.undecodable, true);
    // The password is bytes: not decoded, never altered.
    const raw = Buffer.from([...Buffer.from('auth:a:b:'), 0xff, 0x3a, 0x00]);
    assert.deepEqual(protocol.parseRequest(raw)?.password, Buffer.from([0xff, 0x3a, 0x00]));
  });

  test('a scram request names the hash instead of carrying a password', () => {
    fc.assert(
      fc.property(field, field, fc.constantFrom('sha-1', 'sha-256', 'sha-512', 'sha3-512'), (user, server, hash) => {
        assert.deepEqual(protocol.parseRequest(Buffer.from(`scram:${user}:${server}:${hash}`)), { kind: 'scram', user, server, hash });
      }),
    );
    for (const line of [
      'scram:alice:example.com',
      'scram:alice:example.com:',
      'scram:alice:example.com:sha:256',
      'scram:alice:example.com:SHA-256',
      'scram::x:sha-256',
    ]) {
      assert.equal(protocol.parseRequest(Buffer.from(line)), undefined, line);
    }
  });
});

describe('writing a SCRAM answer', () => {
  const credentials = (length: number, iterations = 4096): Credentials => ({
    iterations,
    salt: Buffer.from('salt bytes'),
    storedKey: Buffer.alloc(length, 1),
    serverKey: Buffer.alloc(length, 2),
  });

  test('iterations, then salt, stored key and server key in base64 with padding', () => {
    assert.equal(
      protocol.scramAnswer('sha-256', credentials(32)),
      `4096:${Buffer.from('salt bytes').toString('base64')}:${Buffer.alloc(32, 1).toString('base64')}:${Buffer.alloc(32, 2).toString('base64')}`,
    );
    assert.match(protocol.scramAnswer('sha-1', credentials(20, 1)), /^1:c2FsdCBieXRlcw==:[A-Za-z0-9+/]{27}=:[A-Za-z0-9+/]{27}=$/);
    assert.match(protocol.scramAnswer('sha-512', credentials(64, 10_000_000)), /^10000000:/);
  });

  test('credentials the component would refuse are a backend failure, and the message holds no key', () => {
    const secret = Buffer.alloc(32, 0x41);
    for (const [hash, bad] of [
      ['sha-256', credentials(20)],
      ['sha-1', credentials(32)],
      ['sha-256', { ...credentials(32), serverKey: secret.subarray(0, 31) }],
      ['sha-256', { ...credentials(32), storedKey: 'AAAA' }],
      ['sha-256', credentials(32, 0)],
      ['sha-256', credentials(32, 10_000_001)],
      ['sha-256', credentials(32, 4096.5)],
      ['sha-256', { ...credentials(32), salt: Buffer.alloc(0) }],
      ['sha3-512', credentials(64)],
    ] as Array<[string, Credentials]>) {
      assert.throws(
        () => protocol.scramAnswer(hash, bad),
        (error: Error) => error instanceof protocol.BackendError && !error.message.includes(secret.toString('base64')) && !error.message.includes('AAAA'),
        `${hash} ${JSON.stringify(bad)}`,
      );
    }
  });
});

describe('password hash schemes', { skip: backendSkipReason() }, () => {
  interface Hashes {
    schemeOf(stored: unknown): string | undefined;
    scramCredentials(stored: string, hash: string): Credentials | undefined;
    verifyPassword(password: Buffer, stored: string): Promise<boolean>;
    hashLike(password: Buffer, stored: string | undefined, defaultCost: number): Promise<string>;
  }
  const load = async () => (await import(pathToFileURL(path.join(BACKENDS, 'lib/password-hashes.mjs')).href)) as Hashes;

  test("hashes from other implementations verify: the PHP manual's bcrypt, Django PBKDF2 by hashlib", async () => {
    const h = await load();
    assert.equal(await h.verifyPassword(Buffer.from(PHP_MANUAL_BCRYPT.password), PHP_MANUAL_BCRYPT.hash), true);
    assert.equal(await h.verifyPassword(Buffer.from('rasmuslerdorF'), PHP_MANUAL_BCRYPT.hash), false);
    const django = djangoPbkdf2('pässwörd', 'seasalt', 1200);
    assert.equal(h.schemeOf(django), 'django-pbkdf2');
    assert.equal(await h.verifyPassword(Buffer.from('pässwörd'), django), true);
    assert.equal(await h.verifyPassword(Buffer.from('passwörd'), django), false);
  });

  test('what is not a known scheme never verifies', async () => {
    const h = await load();
    for (const stored of [
      '',
      '!unusable',
      'plain-text-password',
      '$1$md5crypt$abc',
      `${PHP_MANUAL_BCRYPT.hash}x`,
      'pbkdf2_sha512$1000$salt$AAAA',
      'pbkdf2_sha256$0$salt$AAAA',
    ]) {
      assert.equal(await h.verifyPassword(Buffer.from(stored), stored), false, stored);
      assert.equal(await h.verifyPassword(Buffer.from(''), stored), false, stored);
    }
  });

  test('hashLike keeps the scheme, prefix and cost parameters, and the result verifies', async () => {
    const h = await load();
    const password = Buffer.from('n€w:pw');
    const cases: Array<[string, RegExp]> = [
      [PHP_MANUAL_BCRYPT.hash, /^\$2y\$10\$[./A-Za-z0-9]{53}$/],
      ['$2a$05$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', /^\$2a\$05\$/],
      [djangoPbkdf2('x', 'abc', 1500), /^pbkdf2_sha256\$1500\$[A-Za-z0-9]{22}\$[A-Za-z0-9+/]{43}=$/],
      [
        '$argon2id$v=19$m=2048,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
        /^\$argon2id\$v=19\$m=2048,t=3,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/,
      ],
      ['argon2$argon2id$v=19$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /^argon2\$argon2id\$v=19\$m=1024,t=2,p=1\$/],
      ['bcrypt_sha256$$2b$05$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', /^bcrypt_sha256\$\$2b\$05\$/],
    ];
    for (const [stored, shape] of cases) {
      const fresh = await h.hashLike(password, stored, 4);
      assert.match(fresh, shape, stored);
      assert.equal(await h.verifyPassword(password, fresh), true, fresh);
      assert.equal(await h.verifyPassword(Buffer.from('n€w:pW'), fresh), false, fresh);
    }
    assert.match(await h.hashLike(password, undefined, 4), /^\$2b\$04\$/);
  });

  /** A PostgreSQL-format SCRAM-SHA-256 secret computed here with node:crypto, as RFC 5802 defines it. */
  const scramSecret = (password: string, salt: Buffer, iterations: number) => {
    const saltedPassword = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', saltedPassword).update('Client Key').digest()).digest();
    const serverKey = createHmac('sha256', saltedPassword).update('Server Key').digest();
    return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
  };

  test('a Django pbkdf2_sha256 row gives the SCRAM-SHA-256 credentials a client derives from the password', async () => {
    const h = await load();
    for (const [password, salt, iterations] of [
      ['pencil', 'aB3dE5gH7jK9mN1pQ3sT5v', 1000],
      ['pä:ss wörd € 😀', 'seasalt', 4096],
      ['', 'x', 1],
    ] as Array<[string, string, number]>) {
      const got = h.scramCredentials(djangoPbkdf2(password, salt, iterations), 'sha-256');
      assert.ok(got, `${password}: credentials`);
      assert.equal(got.iterations, iterations);
      assert.deepEqual(got.salt, Buffer.from(salt));
      assert.deepEqual({ storedKey: got.storedKey, serverKey: got.serverKey }, scramKeysByPython('sha256', password, Buffer.from(salt), iterations), password);
    }
    // Django's pbkdf2_sha1 rows hold SCRAM-SHA-1's salted password the same way.
    const sha1 = h.scramCredentials(djangoPbkdf2With('sha1', 'pencil', 'QSXCR+Q6sek8bf92', 4096), 'sha-1');
    assert.deepEqual(
      sha1 && { storedKey: sha1.storedKey, serverKey: sha1.serverKey },
      scramKeysByPython('sha1', 'pencil', Buffer.from('QSXCR+Q6sek8bf92'), 4096),
    );
  });

  test("a SCRAM-SHA-256 secret: the credentials it holds, RFC 7677's exchange, PLAIN checked against it", async () => {
    const h = await load();
    // RFC 7677, section 3: user "user", password "pencil", this salt and iteration count.
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const secret = scramSecret('pencil', salt, 4096);
    assert.equal(h.schemeOf(secret), 'scram-sha-256');
    const got = h.scramCredentials(secret, 'sha-256');
    assert.ok(got);
    assert.equal(got.iterations, 4096);
    assert.deepEqual(got.salt, salt);
    // The server's side of the RFC's exchange with nothing but these credentials: the client's
    // proof verifies and the server signature is the RFC's.
    const nonce = 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const authMessage = `n=user,r=rOprNGfwEbeRWgbNEkqO,r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=${nonce}`;
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const clientSignature = createHmac('sha256', got.storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ clientSignature[i]!));
    assert.deepEqual(createHash('sha256').update(clientKey).digest(), got.storedKey, 'the client proof verifies');
    assert.equal(createHmac('sha256', got.serverKey).update(authMessage).digest('base64'), '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');

    assert.equal(await h.verifyPassword(Buffer.from('pencil'), secret), true);
    assert.equal(await h.verifyPassword(Buffer.from('pencil '), secret), false);
    assert.equal(await h.verifyPassword(Buffer.from(''), secret), false);
  });

  test('no credentials for bcrypt, argon2, another hash, or a row SCRAM cannot serve', async () => {
    const h = await load();
    const django = djangoPbkdf2('pencil', 'salt', 1000);
    const secret = scramSecret('pencil', Buffer.from('salt'), 4096);
    const [, , , digest] = django.split('$');
    for (const [stored, hash] of [
      [django, 'sha-1'],
      [django, 'sha-512'],
      [django, 'sha3-512'],
      [secret, 'sha-1'],
      [secret, 'sha-512'],
      [djangoPbkdf2With('sha1', 'pencil', 'salt', 1000), 'sha-256'],
      [PHP_MANUAL_BCRYPT.hash, 'sha-256'],
      ['$argon2id$v=19$m=2048,t=3,p=2$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'sha-256'],
      ['bcrypt_sha256$$2b$05$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a', 'sha-256'],
      ['!unusable', 'sha-256'],
      ['', 'sha-256'],
      // A Django digest truncated (a length Django's default never writes), or no salt.
      [`pbkdf2_sha256$1000$salt$${Buffer.from(digest!, 'base64').subarray(0, 20).toString('base64')}`, 'sha-256'],
      [`pbkdf2_sha256$1000$$${digest}`, 'sha-256'],
      // Iteration counts a SCRAM answer may not carry.
      [`pbkdf2_sha256$0$salt$${digest}`, 'sha-256'],
      [`pbkdf2_sha256$10000001$salt$${digest}`, 'sha-256'],
      [secret.replace('$4096:', '$20000000:'), 'sha-256'],
      [secret.replace(/\$[^$]*$/, '$AAAA:AAAA'), 'sha-256'],
    ] as Array<[string, string]>) {
      assert.equal(h.scramCredentials(stored, hash), undefined, `${stored} ${hash}`);
    }
  });

  test('setpass keeps a SCRAM secret a SCRAM secret (same iteration count, new salt) and Django PBKDF2 Django PBKDF2', async () => {
    const h = await load();
    const secret = scramSecret('old', Buffer.from('salt'), 4096);
    const fresh = await h.hashLike(Buffer.from('n€w:pw'), secret, 4);
    assert.match(fresh, /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$/);
    assert.equal(await h.verifyPassword(Buffer.from('n€w:pw'), fresh), true);
    assert.equal(await h.verifyPassword(Buffer.from('old'), fresh), false);
    const got = h.scramCredentials(fresh, 'sha-256')!;
    assert.deepEqual({ storedKey: got.storedKey, serverKey: got.serverKey }, scramKeysByPython('sha256', 'n€w:pw', got.salt, 4096));
    const django = await h.hashLike(Buffer.from('n€w:pw'), djangoPbkdf2('old', 'salt', 1500), 4);
    const again = h.scramCredentials(django, 'sha-256')!;
    assert.equal(again.iterations, 1500);
    assert.notDeepEqual(again.salt, Buffer.from('salt'));
    assert.deepEqual({ storedKey: again.storedKey, serverKey: again.serverKey }, scramKeysByPython('sha256', 'n€w:pw', again.salt, 1500));
  });
});
