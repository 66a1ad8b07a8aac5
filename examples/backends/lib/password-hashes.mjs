// @ts-check
// Password hashes as web applications store them, recognised by their prefix:
//
//   $2a$ / $2b$ / $2y$COST$SALTHASH          bcrypt (PHP/Laravel, Rails, Node, Python, Spring)
//   $argon2id$v=19$m=M,t=T,p=P$SALT$HASH      argon2id, PHC string (PHP, Symfony, argon2-cffi);
//   $argon2i$...                              also argon2i
//   pbkdf2_sha256$ITER$SALT$BASE64            Django's default (and pbkdf2_sha1)
//   argon2$argon2id$...                       Django's Argon2PasswordHasher
//   bcrypt_sha256$$2b$...                     Django's BCryptSHA256PasswordHasher
//   SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY   a PostgreSQL-format SCRAM secret (RFC 5803)
//
// verifyPassword compares in constant time (crypto.timingSafeEqual over the computed and the
// stored digest). Anything else (an unusable password such as Django's `!...`, an empty column,
// a scheme we do not know) verifies as false. hashLike makes a new hash in the same scheme and
// with the same cost parameters as the one it replaces, so the application keeps reading it.
//
// scramCredentials gives the SCRAM credentials a stored hash holds, where it holds any. Django's
// PBKDF2 *is* SCRAM's Hi(): its digest is the SaltedPassword of SCRAM with the same hash, the
// salt string's bytes and the same iteration count, so a Django row serves SCRAM-SHA-256 (and
// pbkdf2_sha1 rows SCRAM-SHA-1) without knowing the password. A SCRAM secret holds them as they are.

import { createHash, createHmac, pbkdf2, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import bcrypt from '@node-rs/bcrypt';
import argon2 from '@node-rs/argon2';
import saslprep from '@mongodb-js/saslprep';
import { SCRAM_ITERATIONS } from './script-protocol.mjs';

const pbkdf2Async = promisify(pbkdf2);

/**
 * The groups of `pattern` in `text`, which schemeOf has already matched.
 * @param {RegExp} pattern
 * @param {string} text
 */
function groups(pattern, text) {
  const match = pattern.exec(text);
  if (!match) throw new Error('the hash does not match its scheme');
  return match;
}

const BCRYPT = /^\$(2[aby])\$(\d\d)\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/;
const ARGON2 = /^\$(argon2id|argon2i)\$(?:v=(\d+)\$)?m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
const DJANGO_PBKDF2 = /^pbkdf2_(sha256|sha1)\$(\d+)\$([^$]*)\$([A-Za-z0-9+/]+={0,2})$/;
const SCRAM_SECRET = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2}):([A-Za-z0-9+/]+={0,2})$/;
const MAX_PBKDF2_ITERATIONS = 50_000_000;
/** SCRAM's hash names, with Node's digest name and the digest length. */
const SCRAM_DIGESTS = new Map([
  ['sha-1', { digest: 'sha1', length: 20 }],
  ['sha-256', { digest: 'sha256', length: 32 }],
]);

/**
 * The scheme of a stored hash, or undefined when it is not one we can verify.
 * @param {unknown} stored
 * @returns {string | undefined}
 */
export function schemeOf(stored) {
  if (typeof stored !== 'string') return undefined;
  if (BCRYPT.test(stored)) return 'bcrypt';
  if (ARGON2.test(stored)) return 'argon2';
  if (DJANGO_PBKDF2.test(stored)) return 'django-pbkdf2';
  if (SCRAM_SECRET.test(stored)) return 'scram-sha-256';
  if (stored.startsWith('argon2$') && ARGON2.test(stored.slice('argon2'.length))) return 'django-argon2';
  if (stored.startsWith('bcrypt_sha256$') && BCRYPT.test(stored.slice('bcrypt_sha256$'.length))) return 'django-bcrypt-sha256';
  return undefined;
}

/**
 * @param {Buffer} a
 * @param {Buffer} b
 */
function sameBytes(a, b) {
  return a.length === b.length && timingSafeEqual(a, b);
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const BASE64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/**
 * The 16 salt bytes of a bcrypt hash (22 characters of bcrypt's own base64).
 * @param {string} text
 */
function bcryptSalt(text) {
  const standard = Array.from(text, (c) => BASE64_ALPHABET[BCRYPT_ALPHABET.indexOf(c)]).join('');
  return Buffer.from(standard, 'base64').subarray(0, 16);
}

/**
 * @param {Buffer | string} password
 * @param {string} stored
 */
async function verifyBcrypt(password, stored) {
  const [, , cost, salt] = groups(BCRYPT, stored);
  if (Number(cost) < 4 || Number(cost) > 31) return false;
  // $2a$, $2b$ and $2y$ name the same computation for every password a client can send (the
  // variants differ only in a bug of old implementations on 255+ byte passwords).
  const computed = await bcrypt.hash(password, Number(cost), bcryptSalt(salt));
  return sameBytes(Buffer.from(computed.slice(-31)), Buffer.from(stored.slice(-31)));
}

/**
 * @param {string} stored
 */
function argon2Parts(stored) {
  const [, type, version, m, t, p, salt, digest] = groups(ARGON2, stored);
  return {
    type,
    options: {
      algorithm: type === 'argon2id' ? argon2.Algorithm.Argon2id : argon2.Algorithm.Argon2i,
      version: version === undefined || version === '16' ? argon2.Version.V0x10 : argon2.Version.V0x13,
      memoryCost: Number(m),
      timeCost: Number(t),
      parallelism: Number(p),
    },
    versionText: version,
    salt: Buffer.from(salt, 'base64'),
    digest: Buffer.from(digest, 'base64'),
  };
}

/**
 * @param {Buffer} password
 * @param {string} stored
 */
async function verifyArgon2(password, stored) {
  const { options, salt, digest } = argon2Parts(stored);
  if (digest.length < 4 || salt.length < 8) return false;
  const computed = await argon2.hashRaw(password, { ...options, salt, outputLen: digest.length });
  return sameBytes(computed, digest);
}

/**
 * @param {Buffer} password
 * @param {string} stored
 */
async function verifyDjangoPbkdf2(password, stored) {
  const [, digestName, iterations, salt, digest] = groups(DJANGO_PBKDF2, stored);
  const expected = Buffer.from(digest, 'base64');
  const count = Number(iterations);
  if (count < 1 || count > MAX_PBKDF2_ITERATIONS || expected.length === 0) return false;
  const computed = await pbkdf2Async(password, Buffer.from(salt, 'utf8'), count, expected.length, digestName);
  return sameBytes(computed, expected);
}

/**
 * ClientKey, StoredKey and ServerKey from a SaltedPassword (RFC 5802, section 3).
 * @param {string} digest
 * @param {Buffer} saltedPassword
 */
function scramKeys(digest, saltedPassword) {
  const clientKey = createHmac(digest, saltedPassword).update('Client Key').digest();
  return {
    storedKey: createHash(digest).update(clientKey).digest(),
    serverKey: createHmac(digest, saltedPassword).update('Server Key').digest(),
  };
}

/**
 * The password as PostgreSQL derives SCRAM secrets from it: SASLprep'd (RFC 4013, as a SCRAM
 * client does before deriving), or the raw bytes when it is not valid UTF-8 or SASLprep
 * prohibits one of its characters -- PostgreSQL's own fallback, so its secrets keep verifying.
 * @param {Buffer} password
 * @returns {Buffer}
 */
function scramPassword(password) {
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(password);
    return Buffer.from(saslprep(text), 'utf8');
  } catch {
    return password;
  }
}

/**
 * @param {string} stored
 * @returns {import('./script-protocol.mjs').Credentials}
 */
function scramSecretParts(stored) {
  const [, iterations, salt, storedKey, serverKey] = groups(SCRAM_SECRET, stored);
  return {
    iterations: Number(iterations),
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

/**
 * A PLAIN password checked against a SCRAM secret: recompute the StoredKey and compare.
 * @param {Buffer} password
 * @param {string} stored
 */
async function verifyScramSecret(password, stored) {
  const { iterations, salt, storedKey } = scramSecretParts(stored);
  if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS || salt.length === 0 || storedKey.length !== 32) return false;
  const saltedPassword = await pbkdf2Async(scramPassword(password), salt, iterations, 32, 'sha256');
  return sameBytes(scramKeys('sha256', saltedPassword).storedKey, storedKey);
}

/**
 * A new SCRAM-SHA-256 secret, as PostgreSQL makes them (16 random salt bytes).
 * @param {Buffer} password
 * @param {number} iterations
 */
async function scramSecret(password, iterations) {
  const salt = randomBytes(16);
  const saltedPassword = await pbkdf2Async(scramPassword(password), salt, iterations, 32, 'sha256');
  const { storedKey, serverKey } = scramKeys('sha256', saltedPassword);
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * The SCRAM credentials `stored` holds for `hash` (`sha-1`, `sha-256`, ...): { iterations, salt,
 * storedKey, serverKey } (Buffers), or undefined when it holds none for that hash -- bcrypt and
 * argon2 hashes, another hash than the row's, a digest of the wrong length, an iteration count
 * SCRAM answers may not carry, anything unknown.
 * @param {string} stored
 * @param {string} hash
 * @returns {import('./script-protocol.mjs').Credentials | undefined}
 */
export function scramCredentials(stored, hash) {
  const wanted = SCRAM_DIGESTS.get(hash);
  if (wanted === undefined) return undefined;
  const inRange = (/** @type {number} */ n) => n >= SCRAM_ITERATIONS.min && n <= SCRAM_ITERATIONS.max;
  switch (schemeOf(stored)) {
    case 'django-pbkdf2': {
      const [, digestName, iterations, salt, digest] = groups(DJANGO_PBKDF2, stored);
      const saltedPassword = Buffer.from(digest, 'base64');
      if (digestName !== wanted.digest || saltedPassword.length !== wanted.length || salt === '' || !inRange(Number(iterations))) return undefined;
      return { iterations: Number(iterations), salt: Buffer.from(salt, 'utf8'), ...scramKeys(wanted.digest, saltedPassword) };
    }
    case 'scram-sha-256': {
      if (hash !== 'sha-256') return undefined;
      const parts = scramSecretParts(stored);
      if (!inRange(parts.iterations) || parts.salt.length === 0 || parts.storedKey.length !== 32 || parts.serverKey.length !== 32) return undefined;
      return parts;
    }
    default:
      return undefined;
  }
}

/**
 * Django's bcrypt_sha256 feeds bcrypt the hex SHA-256 of the password.
 * @param {Buffer} password
 */
function sha256Hex(password) {
  return Buffer.from(createHash('sha256').update(password).digest('hex'));
}

/**
 * True when `password` (a Buffer of UTF-8 bytes) matches the stored hash. A stored hash whose
 * parameters the algorithm rejects (argon2 memory below 8 x parallelism, ...) verifies as false:
 * the row is unusable, which is not an outage.
 * @param {Buffer} password
 * @param {string} stored
 * @returns {Promise<boolean>}
 */
export async function verifyPassword(password, stored) {
  try {
    return await verifyByScheme(password, stored);
  } catch {
    return false;
  }
}

/**
 * @param {Buffer} password
 * @param {string} stored
 * @returns {Promise<boolean>}
 */
async function verifyByScheme(password, stored) {
  switch (schemeOf(stored)) {
    case 'bcrypt':
      return verifyBcrypt(password, stored);
    case 'argon2':
      return verifyArgon2(password, stored);
    case 'django-pbkdf2':
      return verifyDjangoPbkdf2(password, stored);
    case 'django-argon2':
      return verifyArgon2(password, stored.slice('argon2'.length));
    case 'django-bcrypt-sha256':
      return verifyBcrypt(sha256Hex(password), stored.slice('bcrypt_sha256$'.length));
    case 'scram-sha-256':
      return verifyScramSecret(password, stored);
    default:
      return false;
  }
}

/**
 * A new bcrypt hash (`$2b$`, or the given version: the same computation).
 * @param {Buffer | string} password
 * @param {number} cost
 * @param {string} [version]
 * @returns {Promise<string>}
 */
export async function hashBcrypt(password, cost, version = '2b') {
  const encoded = await bcrypt.hash(password, cost, randomBytes(16));
  return `$${version}$${encoded.slice(4)}`;
}

/** Django's salt: 22 characters of [a-zA-Z0-9]. */
function djangoSalt() {
  const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  return Array.from({ length: 22 }, () => chars[randomInt(chars.length)]).join('');
}

/**
 * @param {Buffer} password
 * @param {string} stored
 */
async function hashArgon2Like(password, stored) {
  const { type, options, versionText, salt: oldSalt, digest } = argon2Parts(stored);
  const salt = randomBytes(Math.max(16, oldSalt.length));
  const raw = await argon2.hashRaw(password, { ...options, salt, outputLen: digest.length });
  const b64 = (/** @type {Buffer} */ bytes) => bytes.toString('base64').replace(/=+$/, '');
  const version = versionText === undefined ? '' : `v=${versionText}$`;
  return `$${type}$${version}m=${options.memoryCost},t=${options.timeCost},p=${options.parallelism}$${b64(salt)}$${b64(raw)}`;
}

/**
 * A new hash of `password` in the scheme of `stored`, with its cost parameters; a bcrypt hash
 * with `defaultCost` when `stored` is not a scheme we know, has unusable parameters, or is absent.
 * @param {Buffer} password
 * @param {string | undefined} stored
 * @param {number} defaultCost
 * @returns {Promise<string>}
 */
export async function hashLike(password, stored, defaultCost) {
  try {
    return await hashInSchemeOf(password, stored, defaultCost);
  } catch {
    return hashBcrypt(password, defaultCost); // parameters the algorithm rejects
  }
}

/**
 * @param {Buffer} password
 * @param {string | undefined} stored
 * @param {number} defaultCost
 * @returns {Promise<string>}
 */
async function hashInSchemeOf(password, stored, defaultCost) {
  if (stored === undefined) return hashBcrypt(password, defaultCost);
  const scheme = schemeOf(stored);
  if (scheme === 'bcrypt') {
    const [, version, cost] = groups(BCRYPT, stored);
    return hashBcrypt(password, Number(cost), version);
  }
  if (scheme === 'django-bcrypt-sha256') {
    const [, version, cost] = groups(BCRYPT, stored.slice('bcrypt_sha256$'.length));
    return `bcrypt_sha256$${await hashBcrypt(sha256Hex(password), Number(cost), version)}`;
  }
  if (scheme === 'argon2') return hashArgon2Like(password, stored);
  if (scheme === 'django-argon2') return `argon2${await hashArgon2Like(password, stored.slice('argon2'.length))}`;
  if (scheme === 'django-pbkdf2') {
    const [, digestName, iterations, , digest] = groups(DJANGO_PBKDF2, stored);
    const salt = djangoSalt();
    const length = Buffer.from(digest, 'base64').length;
    const computed = await pbkdf2Async(password, Buffer.from(salt, 'utf8'), Number(iterations), length, digestName);
    return `pbkdf2_${digestName}$${iterations}$${salt}$${computed.toString('base64')}`;
  }
  if (scheme === 'scram-sha-256') {
    const { iterations } = scramSecretParts(stored);
    if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS) return hashBcrypt(password, defaultCost);
    return scramSecret(password, iterations);
  }
  return hashBcrypt(password, defaultCost);
}
