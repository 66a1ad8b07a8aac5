// The backends' shared pieces as pure functions: request parsing (examples/backends/lib/
// script-protocol.mjs) and the password hash schemes (examples/backends/lib/password-hashes.mjs).
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { BACKENDS, backendSkipReason } from '../../support/backends/postgres.js';
import { djangoPbkdf2, PHP_MANUAL_BCRYPT } from '../../support/backends/accounts.js';

interface Parsed {
  kind: string;
  user: string;
  server: string;
  password?: Buffer;
  undecodable?: boolean;
}
const protocol = (await import(pathToFileURL(path.join(BACKENDS, 'lib/script-protocol.mjs')).href)) as { parseRequest(bytes: Buffer): Parsed | undefined };

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
});

describe('password hash schemes', { skip: backendSkipReason() }, () => {
  interface Hashes {
    schemeOf(stored: unknown): string | undefined;
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
});
