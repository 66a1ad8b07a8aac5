// @ts-check
// The script side of extauth-component, shared by the backends in this directory.
//
// serve(handle) reads requests from stdin in the protocol named by EXTERNAL_AUTH_PROTOCOL (the
// component's own variable, inherited through the environment) and writes one answer per request:
//
//   generic   `KIND:USER:SERVER[:PASSWORD]\n`              -> `1\n` / `0\n`, one at a time, in order
//   ejabberd  2-byte big-endian length + the same fields    -> 00 02 00 01 / 00 02 00 00, in order
//   tagged    `ID:KIND:USER:SERVER[:PASSWORD]\n`            -> `ID:1\n` / `ID:0\n` / `ID:E\n`,
//             requests handled concurrently, answered as each finishes
//
// The `scram` kind asks for SCRAM credentials instead of checking a password: `scram:USER:SERVER:
// HASH` (HASH `sha-1`, `sha-256` or `sha-512`), answered `0` (no such user, or no credentials for
// that hash) or `1:ITERATIONS:SALT:STOREDKEY:SERVERKEY` in base64 (tagged: `ID:1:...`). The
// ejabberd protocol has no form for that answer; the component never sends it there.
//
// handle(request) resolves true or false -- for scram, false or the credentials ({ iterations,
// salt, storedKey, serverKey }, Buffers) -- or throws BackendError when the backend failed
// (database down, service unreachable, bad response). A failure is never answered as a refusal:
// in tagged it is `ID:E` and the script goes on; in generic and ejabberd, which have no way to say
// "error", the script writes nothing and exits non-zero, and the component answers that request
// as an outage and restarts the script with backoff. Credentials the component would reject
// (wrong key lengths, iterations out of range) are a backend failure too, found here before they
// are written. The keys are secrets like passwords: nothing here writes them anywhere but stdout.
//
// stdin is read as bytes: frames may arrive split anywhere, even inside a UTF-8 character. The
// password is the last field, may contain colons and is handed over as a Buffer. Answers go to a
// pipe, which Node writes synchronously: each is flushed before the next request is read.
// Nothing here ever writes a password or a request line anywhere.

import { stdin, stdout, stderr, env, exit } from 'node:process';

/**
 * A request as handle() gets it. `password` (bytes, never decoded) for auth, setpass and
 * tryregister; `hash` for scram; `undecodable` when the user or server is not UTF-8.
 * @typedef {{ kind: string, user: string, server: string, password?: Buffer, hash?: string, undecodable?: boolean }} Request
 */
/**
 * SCRAM credentials: what a scram request is answered with.
 * @typedef {{ iterations: number, salt: Buffer, storedKey: Buffer, serverKey: Buffer }} Credentials
 */
/**
 * A backend: handle() answers one request (true or false; for scram false or the credentials)
 * or throws BackendError; close() runs once stdin has ended.
 * @typedef {{ handle(request: Request): Promise<boolean | Credentials>, close?(): Promise<void> | void }} Backend
 */

/** The backend could not answer (outage, bad response): never a refusal. */
export class BackendError extends Error {
  name = 'BackendError';
}

/** A configuration problem found at startup: one line on stderr, exit 2. */
export class ConfigError extends Error {
  name = 'ConfigError';
}

/**
 * Field count per request kind; the last field of a 4-field kind is the password (scram: the hash).
 * @type {Map<string, number>}
 */
export const KINDS = new Map([
  ['auth', 4],
  ['isuser', 3],
  ['setpass', 4],
  ['tryregister', 4],
  ['removeuser', 3],
  ['scram', 4],
]);

/**
 * Digest length in bytes of each hash a scram request may name: the length of its keys.
 * @type {Map<string, number>}
 */
export const SCRAM_HASHES = new Map([
  ['sha-1', 20],
  ['sha-256', 32],
  ['sha-512', 64],
]);
/** The iteration counts the component accepts in an answer. */
export const SCRAM_ITERATIONS = { min: 1, max: 10_000_000 };

const TAG = /^[0-9a-z]{1,16}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const COLON = 0x3a;

/**
 * Parses `KIND:USER:SERVER[:PASSWORD]` (bytes). Returns undefined for anything malformed;
 * `{ kind, user, server, password?: Buffer, undecodable }` otherwise (scram: `hash` instead of
 * `password`). `undecodable` is set when the user or server is not valid UTF-8: such a request
 * names no account and is refused.
 * @param {Buffer} bytes
 * @returns {Request | undefined}
 */
export function parseRequest(bytes) {
  /** @type {Buffer[]} */
  const fields = [];
  let start = 0;
  const kindEnd = bytes.indexOf(COLON);
  if (kindEnd < 0) return undefined;
  const kind = bytes.subarray(0, kindEnd).toString('latin1');
  const count = KINDS.get(kind);
  if (count === undefined) return undefined;
  start = kindEnd + 1;
  for (let i = 1; i < count - 1; i++) {
    const end = bytes.indexOf(COLON, start);
    if (end < 0) return undefined;
    fields.push(bytes.subarray(start, end));
    start = end + 1;
  }
  fields.push(bytes.subarray(start));
  if (count === 3 && fields[1].includes(COLON)) return undefined;
  let user;
  let server;
  try {
    user = utf8.decode(fields[0]);
    server = utf8.decode(fields[1]);
  } catch {
    return { kind, user: '', server: '', undecodable: true };
  }
  if (user === '') return undefined;
  if (kind === 'scram') {
    // A hash name this script does not know is still a well-formed request: no credentials for it.
    const hash = fields[2].toString('latin1');
    return /^[a-z0-9-]{1,32}$/.test(hash) ? { kind, user, server, hash } : undefined;
  }
  return count === 4 ? { kind, user, server, password: Buffer.from(fields[2]) } : { kind, user, server };
}

/**
 * Splits a byte stream into `\n`-terminated lines (without the `\n`).
 * @param {AsyncIterable<Buffer>} input
 */
async function* lines(input) {
  /** @type {Buffer} */
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let newline;
    while ((newline = pending.indexOf(0x0a)) >= 0) {
      yield pending.subarray(0, newline);
      pending = pending.subarray(newline + 1);
    }
  }
  if (pending.length) throw new Error('input ended inside a request');
}

/**
 * Splits a byte stream into 2-byte-length-prefixed frames.
 * @param {AsyncIterable<Buffer>} input
 */
async function* frames(input) {
  /** @type {Buffer} */
  let pending = Buffer.alloc(0);
  for await (const chunk of input) {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const end = 2 + pending.readUInt16BE(0);
      yield pending.subarray(2, end);
      pending = pending.subarray(end);
    }
  }
  if (pending.length) throw new Error('input ended inside a request');
}

const EJABBERD_YES = Buffer.from([0, 2, 0, 1]);
const EJABBERD_NO = Buffer.from([0, 2, 0, 0]);

/**
 * The protocol named by EXTERNAL_AUTH_PROTOCOL (default generic).
 * @returns {'generic' | 'ejabberd' | 'tagged'}
 */
export function protocolFromEnv() {
  const protocol = (env.EXTERNAL_AUTH_PROTOCOL ?? '').trim() || 'generic';
  if (!['generic', 'ejabberd', 'tagged'].includes(protocol)) {
    throw new ConfigError(`EXTERNAL_AUTH_PROTOCOL must be generic, ejabberd or tagged, not ${JSON.stringify(protocol)}`);
  }
  return /** @type {'generic' | 'ejabberd' | 'tagged'} */ (protocol);
}

/**
 * One stderr line per failure, at most one per second; the rest are counted and reported with
 * the next line. The component puts these lines in its log: they never carry a password.
 * @param {string} name
 * @returns {(message: string) => void}
 */
export function failureLogger(name) {
  let last = 0;
  let suppressed = 0;
  return (message) => {
    const now = Date.now();
    if (now - last < 1000) {
      suppressed++;
      return;
    }
    last = now;
    stderr.write(`${name}: ${message}${suppressed ? ` (and ${suppressed} more failures)` : ''}\n`);
    suppressed = 0;
  };
}

/**
 * Builds a backend with setup() (which may throw ConfigError), then serves stdin until it ends,
 * then calls close(). `name` prefixes stderr lines.
 * @param {string} name
 * @param {(options: { protocol: 'generic' | 'ejabberd' | 'tagged' }) => Promise<Backend>} setup
 */
export async function runBackend(name, setup) {
  let backend;
  let protocol;
  try {
    protocol = protocolFromEnv();
    backend = await setup({ protocol });
  } catch (error) {
    if (error instanceof ConfigError) {
      stderr.write(`${name}: ${error.message}\n`);
      exit(2);
    }
    throw error;
  }
  const logFailure = failureLogger(name);
  /** @type {(message: string) => never} */
  const fail = (message) => {
    stderr.write(`${name}: ${message}; exiting so that the component restarts this script\n`);
    return exit(1);
  };
  try {
    if (protocol === 'tagged') await serveTagged(backend.handle, logFailure, fail);
    else await serveInOrder(protocol, backend.handle, fail);
  } catch (error) {
    fail(`reading stdin failed: ${error instanceof Error ? error.message : String(error)}`);
  }
  await backend.close?.();
  exit(0);
}

/**
 * The SCRAM answer's fields after `1:`, or a BackendError when the credentials are not ones the
 * component would accept. The message names what is wrong, never a value.
 * @param {string} hash
 * @param {Partial<Credentials> | undefined} credentials
 * @returns {string}
 */
export function scramAnswer(hash, credentials) {
  const length = SCRAM_HASHES.get(hash);
  if (length === undefined) throw new BackendError(`credentials for an unknown hash ${JSON.stringify(hash)}`);
  const { iterations, salt, storedKey, serverKey } = credentials ?? {};
  if (typeof iterations !== 'number' || !Number.isInteger(iterations) || iterations < SCRAM_ITERATIONS.min || iterations > SCRAM_ITERATIONS.max) {
    throw new BackendError(`SCRAM iteration count out of range (${SCRAM_ITERATIONS.min} to ${SCRAM_ITERATIONS.max})`);
  }
  if (!Buffer.isBuffer(salt) || salt.length === 0) throw new BackendError('SCRAM salt missing or empty');
  if (!Buffer.isBuffer(storedKey) || storedKey.length !== length) throw new BackendError(`SCRAM stored key is not ${length} bytes, as ${hash} needs`);
  if (!Buffer.isBuffer(serverKey) || serverKey.length !== length) throw new BackendError(`SCRAM server key is not ${length} bytes, as ${hash} needs`);
  return `${iterations}:${salt.toString('base64')}:${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/**
 * The answer text after the tag: `1`, `0`, or for scram `1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`.
 * @param {Backend['handle']} handle
 * @param {Request} request
 */
async function answerOf(handle, request) {
  if (request.undecodable) return '0';
  const result = await handle(request);
  if (request.kind !== 'scram') return result ? '1' : '0';
  return result ? `1:${scramAnswer(request.hash ?? '', result === true ? undefined : result)}` : '0';
}

/**
 * What may be logged about an exception of handle(): a BackendError's reason, else only its class.
 * @param {unknown} error
 */
function failureOf(error) {
  if (error instanceof BackendError) return `backend failed: ${error.message}`;
  return `unexpected error: ${error instanceof Error ? error.name : typeof error}`;
}

/**
 * @param {'generic' | 'ejabberd'} protocol
 * @param {Backend['handle']} handle
 * @param {(message: string) => never} fail
 */
async function serveInOrder(protocol, handle, fail) {
  const input = protocol === 'ejabberd' ? frames(stdin) : lines(stdin);
  for await (const bytes of input) {
    const request = parseRequest(bytes);
    // ejabberd's answer frame can only say yes or no: it has no form for credentials.
    if (!request || (protocol === 'ejabberd' && request.kind === 'scram')) return fail('malformed request');
    let answer;
    try {
      answer = await answerOf(handle, request);
    } catch (error) {
      return fail(failureOf(error));
    }
    stdout.write(protocol === 'ejabberd' ? (answer === '1' ? EJABBERD_YES : EJABBERD_NO) : `${answer}\n`);
  }
}

/**
 * @param {Backend['handle']} handle
 * @param {(message: string) => void} logFailure
 * @param {(message: string) => never} fail
 */
async function serveTagged(handle, logFailure, fail) {
  /** @type {Set<Promise<void>>} */
  const inFlight = new Set();
  for await (const line of lines(stdin)) {
    const colon = line.indexOf(COLON);
    const id = colon > 0 ? line.subarray(0, colon).toString('latin1') : '';
    if (!TAG.test(id)) fail('malformed request (no valid tag)');
    const request = parseRequest(line.subarray(colon + 1));
    const work = (async () => {
      let answer;
      if (!request) answer = 'E';
      else {
        try {
          answer = await answerOf(handle, request);
        } catch (error) {
          logFailure(failureOf(error));
          answer = 'E';
        }
      }
      stdout.write(`${id}:${answer}\n`);
    })();
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
  }
  await Promise.all(inFlight);
}
