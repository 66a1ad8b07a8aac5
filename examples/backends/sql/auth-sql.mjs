// @ts-check
// auth-sql: extauth-component's script for accounts in a PostgreSQL table (a web application's
// user table). Configured only by environment variables; see docs/backends.md.
//
//   AUTH_DATABASE_URL       postgres://USER:PASSWORD@HOST:PORT/DB[?sslmode=verify-full]  (required)
//   AUTH_SQL_TABLE          users          (may be schema-qualified: auth.users)
//   AUTH_SQL_USER_COLUMN    username
//   AUTH_SQL_HASH_COLUMN    password_hash
//   AUTH_SQL_DOMAIN_COLUMN  unset: the server part of a request is not matched
//   AUTH_SQL_POOL_SIZE      connections (default 8 in tagged, 1 otherwise)
//   AUTH_SQL_BCRYPT_COST    cost of the bcrypt hashes made for new rows (default 12)
//
// auth verifies bcrypt, argon2id and Django PBKDF2 hashes and PostgreSQL-format SCRAM-SHA-256
// secrets (lib/password-hashes.mjs); scram answers the SCRAM credentials a Django pbkdf2_sha256 row
// or a SCRAM secret holds (0 for bcrypt and argon2 rows, which hold none); setpass stores a new
// hash in the scheme of the one it replaces; tryregister inserts a row (refused when the user
// exists); removeuser deletes it. Identifiers are validated and quoted; every value is a
// bound parameter. A database failure is never answered as a refusal (lib/script-protocol.mjs).

import { env } from 'node:process';
import pg from 'pg';
import { BackendError, ConfigError, runBackend } from '../lib/script-protocol.mjs';
import { hashBcrypt, hashLike, schemeOf, scramCredentials, verifyPassword } from '../lib/password-hashes.mjs';

const NAME = 'auth-sql';
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * A validated, double-quoted SQL identifier; `schema.table` allowed where `qualified`.
 * @param {string} variable
 * @param {string} value
 */
export function quoteIdentifier(variable, value, qualified = false) {
  const parts = qualified ? value.split('.') : [value];
  if (parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new ConfigError(
      `${variable} must be ${qualified ? 'a table name (optionally schema.table)' : 'a column name'} of letters, digits and underscores, not ${JSON.stringify(value)}`,
    );
  }
  return parts.map((part) => `"${part}"`).join('.');
}

/**
 * @param {string} variable
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 */
function positiveInteger(variable, fallback, min, max) {
  const text = env[variable];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(`${variable} must be an integer from ${min} to ${max}, not ${JSON.stringify(text)}`);
  return value;
}

/** @param {string} protocol */
function configure(protocol) {
  const url = env.AUTH_DATABASE_URL;
  if (!url) throw new ConfigError('AUTH_DATABASE_URL is required (postgres://USER:PASSWORD@HOST:PORT/DATABASE)');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError('AUTH_DATABASE_URL must be a postgres:// URL');
  return {
    url,
    table: quoteIdentifier('AUTH_SQL_TABLE', env.AUTH_SQL_TABLE || 'users', true),
    user: quoteIdentifier('AUTH_SQL_USER_COLUMN', env.AUTH_SQL_USER_COLUMN || 'username'),
    hash: quoteIdentifier('AUTH_SQL_HASH_COLUMN', env.AUTH_SQL_HASH_COLUMN || 'password_hash'),
    domain: env.AUTH_SQL_DOMAIN_COLUMN ? quoteIdentifier('AUTH_SQL_DOMAIN_COLUMN', env.AUTH_SQL_DOMAIN_COLUMN) : undefined,
    poolSize: positiveInteger('AUTH_SQL_POOL_SIZE', protocol === 'tagged' ? 8 : 1, 1, 1000),
    bcryptCost: positiveInteger('AUTH_SQL_BCRYPT_COST', 12, 4, 31),
  };
}

/**
 * The statements, built once from validated identifiers; values are always $n parameters.
 * @param {{ table: string, user: string, hash: string, domain?: string | undefined }} identifiers
 */
function statements({ table, user, hash, domain }) {
  const where = domain ? `${user} = $1 AND ${domain} = $2` : `${user} = $1`;
  const keyColumns = domain ? `${user}, ${domain}` : user;
  const keyValues = domain ? '$1, $2' : '$1';
  const n = domain ? 3 : 2; // the first parameter after the key
  return {
    select: `SELECT ${hash} AS hash FROM ${table} WHERE ${where} LIMIT 2`,
    exists: `SELECT 1 FROM ${table} WHERE ${where} LIMIT 1`,
    // Only if the hash is still the one we read: a concurrent change wins, this one is refused.
    update: `UPDATE ${table} SET ${hash} = $${n} WHERE ${where} AND ${hash} IS NOT DISTINCT FROM $${n + 1}`,
    insert:
      `INSERT INTO ${table} (${keyColumns}, ${hash}) SELECT ${keyValues}, $${n} ` +
      `WHERE NOT EXISTS (SELECT 1 FROM ${table} WHERE ${where}) ON CONFLICT DO NOTHING`,
    delete: `DELETE FROM ${table} WHERE ${where}`,
  };
}

/**
 * What may be logged about a database error: its class and message, never row values.
 * @param {unknown} error
 */
function describe(error) {
  if (error instanceof BackendError) return error.message;
  if (!(error instanceof Error)) return 'database error';
  const code = 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return `database error${code ? ` ${code}` : ''}: ${error.message || error.name}`;
}

await runBackend(NAME, async ({ protocol }) => {
  const config = configure(protocol);
  const sql = statements(config);
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolSize,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'extauth auth-sql',
  });
  // A pooled connection that dies while idle (database restarted): dropped from the pool, the
  // next request opens a new one. Errors of a query in progress reach that query.
  pool.on('error', () => {});

  /** @type {(text: string, values: unknown[]) => Promise<{ rows: Array<Record<string, unknown>>, rowCount: number }>} */
  const query = async (text, values) => {
    try {
      const { rows, rowCount } = await pool.query(text, values);
      return { rows, rowCount: rowCount ?? 0 };
    } catch (error) {
      throw new BackendError(describe(error));
    }
  };

  /**
   * The account's stored hash: undefined when there is no such account, null when its hash is NULL.
   * @type {(key: string[]) => Promise<string | null | undefined>}
   */
  const storedHash = async (key) => {
    const { rows } = await query(sql.select, key);
    if (rows.length > 1) throw new BackendError(`several rows match one account: set AUTH_SQL_DOMAIN_COLUMN or make ${config.user} unique`);
    const hash = rows[0]?.hash;
    return hash === undefined || hash === null ? hash : String(hash);
  };

  return {
    async handle({ kind, user, server, password, hash }) {
      const key = config.domain ? [user, server] : [user];
      // The parser gives every kind that carries a password one, and scram a hash.
      const secret = /** @type {Buffer} */ (password);
      switch (kind) {
        case 'auth': {
          const stored = await storedHash(key);
          return typeof stored === 'string' && verifyPassword(secret, stored);
        }
        case 'scram': {
          const stored = await storedHash(key);
          return (typeof stored === 'string' && scramCredentials(stored, /** @type {string} */ (hash))) || false;
        }
        case 'isuser':
          return (await query(sql.exists, key)).rowCount > 0;
        case 'setpass': {
          const stored = await storedHash(key);
          if (stored === undefined) return false;
          const fresh = await hashLike(secret, stored !== null && schemeOf(stored) ? stored : undefined, config.bcryptCost);
          return (await query(sql.update, [...key, fresh, stored])).rowCount > 0;
        }
        case 'tryregister': {
          const fresh = await hashBcrypt(secret, config.bcryptCost);
          return (await query(sql.insert, [...key, fresh])).rowCount > 0;
        }
        case 'removeuser':
          return (await query(sql.delete, key)).rowCount > 0;
        default:
          return false;
      }
    },
    close: () => pool.end(),
  };
});
