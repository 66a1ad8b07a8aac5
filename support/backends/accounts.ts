// Accounts for the backend tests, hashed the way web applications store them. Where possible a
// hash comes from an implementation other than the one auth-sql verifies with: the PHP manual's
// password_verify example, and Django's PBKDF2 computed by Python's hashlib.
import { execFileSync } from 'node:child_process';
import type { PostgresCluster } from './postgres.js';
import { backendRequire } from './postgres.js';

interface Bcrypt {
  hash(password: string | Uint8Array, cost?: number): Promise<string>;
}
interface Argon2 {
  hash(password: string, options: { algorithm: number; memoryCost: number; timeCost: number; parallelism: number }): Promise<string>;
  verify(hashed: string, password: string): Promise<boolean>;
}

export interface Account {
  user: string;
  password: string;
  hash: string;
  /** What the hash is, for messages. */
  scheme: string;
  /** The prefix a hash of this scheme starts with (setpass keeps it). */
  prefix: string;
}

/** Django's pbkdf2_sha256 as Django computes it (hashlib), here through Python. */
export function djangoPbkdf2(password: string, salt: string, iterations: number): string {
  return djangoPbkdf2With('sha256', password, salt, iterations);
}

/** Django's pbkdf2 hashers (`PBKDF2PasswordHasher`, `PBKDF2SHA1PasswordHasher`) as Django computes them, through Python's hashlib. */
export function djangoPbkdf2With(digest: 'sha1' | 'sha256', password: string, salt: string, iterations: number): string {
  const program = [
    'import base64, hashlib, sys',
    'dg, pw, salt, it = sys.stdin.buffer.read().split(b"\\0")',
    'd = base64.b64encode(hashlib.pbkdf2_hmac(dg.decode(), pw, salt, int(it))).decode()',
    'print("pbkdf2_%s$%s$%s$%s" % (dg.decode(), int(it), salt.decode(), d))',
  ].join('\n');
  return execFileSync('python3', ['-c', program], { input: Buffer.from(`${digest}\0${password}\0${salt}\0${iterations}`) })
    .toString()
    .trim();
}

/**
 * SCRAM's StoredKey and ServerKey as a SCRAM client derives them from the password (RFC 5802:
 * SaltedPassword = Hi(password, salt, i)), computed by Python's hashlib and hmac: an expected value
 * independent of the backends' code, which derives them from a stored hash instead.
 */
export function scramKeysByPython(digest: 'sha1' | 'sha256', password: string, salt: Buffer, iterations: number): { storedKey: Buffer; serverKey: Buffer } {
  const program = [
    'import base64, hashlib, hmac, sys',
    'dg, pw, salt, it = sys.stdin.buffer.read().split(b"\\0")',
    'dg = dg.decode()',
    'sp = hashlib.pbkdf2_hmac(dg, pw, base64.b64decode(salt), int(it))',
    'ck = hmac.new(sp, b"Client Key", dg).digest()',
    'print(base64.b64encode(hashlib.new(dg, ck).digest()).decode(), base64.b64encode(hmac.new(sp, b"Server Key", dg).digest()).decode())',
  ].join('\n');
  const out = execFileSync('python3', ['-c', program], { input: Buffer.from(`${digest}\0${password}\0${salt.toString('base64')}\0${iterations}`) })
    .toString()
    .trim()
    .split(' ');
  return { storedKey: Buffer.from(out[0]!, 'base64'), serverKey: Buffer.from(out[1]!, 'base64') };
}

export const PHP_MANUAL_BCRYPT = { password: 'rasmuslerdorf', hash: '$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a' };

/** Users whose names try to break out of a query. None exists; none may log in or be removed. */
export const INJECTION_USERS = [`' OR '1'='1`, `alice'--`, `x"; DROP TABLE users; --`, `%`, `alice' OR username LIKE '%`, `\\'; DELETE FROM users; --`];

export async function makeAccounts(): Promise<Account[]> {
  const bcrypt = backendRequire('@node-rs/bcrypt') as Bcrypt;
  const argon2 = backendRequire('@node-rs/argon2') as Argon2;
  const b = async (password: string, prefix: string) => `${prefix}${(await bcrypt.hash(password, 4)).slice(4)}`;
  // PHP's password_hash(PASSWORD_ARGON2ID) format, with a small memory cost to keep tests fast.
  const a = (password: string) => argon2.hash(password, { algorithm: 2, memoryCost: 1024, timeCost: 2, parallelism: 1 });
  return [
    { user: 'laravel', password: PHP_MANUAL_BCRYPT.password, hash: PHP_MANUAL_BCRYPT.hash, scheme: 'bcrypt $2y$ (PHP manual)', prefix: '$2y$10$' },
    { user: 'spring', password: 'spring-pass', hash: await b('spring-pass', '$2a$'), scheme: 'bcrypt $2a$', prefix: '$2a$04$' },
    { user: 'rails', password: 'rails pass', hash: await b('rails pass', '$2b$'), scheme: 'bcrypt $2b$', prefix: '$2b$04$' },
    { user: 'symfony', password: 'argon:pass', hash: await a('argon:pass'), scheme: 'argon2id', prefix: '$argon2id$v=19$m=1024,t=2,p=1$' },
    {
      user: 'django',
      password: 'django pass',
      hash: djangoPbkdf2('django pass', 'aB3dE5gH7jK9mN1pQ3sT5v', 1000),
      scheme: 'Django pbkdf2_sha256',
      prefix: 'pbkdf2_sha256$1000$',
    },
    {
      user: 'django-argon',
      password: 'dj:argon',
      hash: `argon2${await a('dj:argon')}`,
      scheme: 'Django argon2',
      prefix: 'argon2$argon2id$v=19$m=1024,t=2,p=1$',
    },
    { user: 'jürgen', password: 'pä:ss wörd € 😀 :', hash: await b('pä:ss wörd € 😀 :', '$2b$'), scheme: 'bcrypt, UTF-8 user and password', prefix: '$2b$04$' },
    {
      user: 'unicode-django',
      password: 'пароль:密码',
      hash: djangoPbkdf2('пароль:密码', 'Zx9Yw8Vu7Ts6Rq5Po4Nm3L', 1000),
      scheme: 'Django pbkdf2_sha256, UTF-8 password',
      prefix: 'pbkdf2_sha256$1000$',
    },
  ];
}

/** The standard table: `users(username primary key, password_hash)` plus the columns a web app has. */
export async function createUsersTable(cluster: PostgresCluster, accounts: Account[]): Promise<void> {
  await cluster.sql(`DROP TABLE IF EXISTS users`);
  await cluster.sql(`CREATE TABLE users (
    id serial PRIMARY KEY,
    username text NOT NULL UNIQUE,
    password_hash text,
    email text,
    created_at timestamptz NOT NULL DEFAULT now()
  )`);
  await cluster.sql('INSERT INTO users (username, password_hash) SELECT * FROM unnest($1::text[], $2::text[])', [
    accounts.map((a) => a.user),
    accounts.map((a) => a.hash),
  ]);
  // Django's "unusable password" and rows with no hash: never a login.
  // An argon2 hash with parameters argon2 rejects (memory below 8 x parallelism): unusable, not an outage.
  await cluster.sql(`INSERT INTO users (username, password_hash) VALUES ('disabled', '!Xk3mVtY0tDq7rW'), ('nohash', NULL), ('empty', ''),
    ('badparams', '$argon2id$v=19$m=1,t=1,p=4$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')`);
}
