// SCRAM credentials through the component: the answers' strict reading, the decoders' share
// of it, the worker, the edge and the cache. Credentials here are derived the way a backend
// derives them (RFC 5802), so the lengths and encodings are the real ones.
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, test } from 'node:test';
import xml from '@xmpp/xml';
import fc from 'fast-check';
import pino from 'pino';
import { CredentialCache } from '../../src/cache/credential-cache.js';
import type { ScriptAnswer, ScriptCodec } from '../../src/codec/codec.js';
import { ejabberdCodec } from '../../src/codec/ejabberd.js';
import { genericCodec } from '../../src/codec/generic.js';
import { requestFields } from '../../src/codec/request-fields.js';
import { parseScramCredentials, readAnswer } from '../../src/codec/scram-answer.js';
import { taggedCodec } from '../../src/codec/tagged.js';
import { SCRAM_HASHES, type AuthRequest, type ScramHash } from '../../src/core/auth-request.js';
import { Failure, type Outcome } from '../../src/core/failure.js';
import { ScramCredentials } from '../../src/core/scram-credentials.js';
import { ScriptPool } from '../../src/pool/script-pool.js';
import { ScriptWorker } from '../../src/worker/script-worker.js';
import { parseAuthQuery } from '../../src/xmpp/auth-query.js';
import { StanzaError, stanzaErrorFor } from '../../src/xmpp/stanza-error.js';
import { captureLog, COMMAND, FakeLauncher, makeJob, settle, useFakeTime } from './fake-script.js';

const DIGESTS = { 'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;

/** StoredKey and ServerKey as RFC 5802 derives them from a password. */
function derive(hash: ScramHash, password: string, salt: Buffer, iterations: number) {
  const digest = DIGESTS[hash];
  const salted = pbkdf2Sync(password, salt, iterations, SCRAM_HASHES[hash], digest);
  const clientKey = createHmac(digest, salted).update('Client Key').digest();
  return {
    storedKey: createHash(digest).update(clientKey).digest(),
    serverKey: createHmac(digest, salted).update('Server Key').digest(),
  };
}

const SALT = Buffer.from('QSXCR+Q6sek8bf92', 'ascii');
const KEYS = derive('sha-256', 'pencil', SALT, 4096);
const GOOD = `4096:${SALT.toString('base64')}:${KEYS.storedKey.toString('base64')}:${KEYS.serverKey.toString('base64')}`;
const SCRAM: AuthRequest = { kind: 'scram', user: 'alice', server: 'example.com', hash: 'sha-256' };

describe('SCRAM credentials: strict reading', () => {
  test('real credentials of each hash parse, with the fields as sent', () => {
    for (const hash of Object.keys(SCRAM_HASHES) as ScramHash[]) {
      const keys = derive(hash, 'pencil', SALT, 1000);
      const text = `1000:${SALT.toString('base64')}:${keys.storedKey.toString('base64')}:${keys.serverKey.toString('base64')}`;
      const parsed = parseScramCredentials(text, hash);
      assert.ok(parsed, hash);
      assert.deepEqual(
        [parsed.iterations, parsed.salt, parsed.storedKey, parsed.serverKey],
        [1000, SALT.toString('base64'), keys.storedKey.toString('base64'), keys.serverKey.toString('base64')],
      );
    }
  });

  test('every malformed answer is refused', () => {
    const [, salt, stored, server] = GOOD.split(':') as [string, string, string, string];
    const sha1Key = Buffer.alloc(20, 7).toString('base64');
    const cases: Record<string, string> = {
      'iterations 0': `0:${salt}:${stored}:${server}`,
      'iterations 10,000,001': `10000001:${salt}:${stored}:${server}`,
      'iterations with a leading zero': `04096:${salt}:${stored}:${server}`,
      'iterations signed': `+4096:${salt}:${stored}:${server}`,
      'iterations not a number': `many:${salt}:${stored}:${server}`,
      'empty salt': `4096::${stored}:${server}`,
      'salt without padding': `4096:${salt.replace(/=+$/, '')}:${stored}:${server}`,
      'stored key of another hash': `4096:${salt}:${sha1Key}:${server}`,
      'server key too long': `4096:${salt}:${stored}:${Buffer.alloc(33).toString('base64')}`,
      'stored key base64url': `4096:${salt}:${Buffer.alloc(32, 0xfb).toString('base64url')}=:${server}`,
      'stored key with a space': `4096:${salt}:${stored.slice(0, 4)} ${stored.slice(5)}:${server}`,
      'non-zero unused bits': `4096:${salt}:${stored.slice(0, -2)}B=:${server}`,
      'a field missing': `4096:${salt}:${stored}`,
      'a field too many': `${GOOD}:x`,
    };
    assert.ok(parseScramCredentials(GOOD, 'sha-256'));
    assert.equal(parseScramCredentials(`10000000:${salt}:${stored}:${server}`, 'sha-256')?.iterations, 10_000_000, 'the upper bound itself is fine');
    for (const [what, text] of Object.entries(cases)) assert.equal(parseScramCredentials(text, 'sha-256'), null, what);
    assert.equal(parseScramCredentials(GOOD, 'sha-1'), null, 'sha-256 keys for a sha-1 request');
    assert.equal(parseScramCredentials(GOOD, 'sha-512'), null);
  });

  test('property: whatever the text, it never throws, and what it accepts is exactly in range and canonical', () => {
    const base64ish = fc.stringMatching(/^[A-Za-z0-9+/=_-]{0,90}$/);
    const text = fc.oneof(
      fc.string(),
      fc.tuple(fc.stringMatching(/^[0-9+-]{0,9}$/), base64ish, base64ish, base64ish).map((parts) => parts.join(':')),
      fc
        .tuple(fc.integer({ min: -5, max: 10_000_005 }), fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 70 }), fc.uint8Array({ maxLength: 70 }))
        .map(([i, s, a, b]) => [i, s, a, b].map((v) => (typeof v === 'number' ? String(v) : Buffer.from(v).toString('base64'))).join(':')),
    );
    const hash = fc.constantFrom<ScramHash>('sha-1', 'sha-256', 'sha-512');
    fc.assert(
      fc.property(text, hash, (t, h) => {
        const parsed = parseScramCredentials(t, h);
        if (parsed === null) return;
        assert.ok(Number.isInteger(parsed.iterations) && parsed.iterations >= 1 && parsed.iterations <= 10_000_000);
        assert.ok(Buffer.from(parsed.salt, 'base64').length > 0);
        for (const key of [parsed.storedKey, parsed.serverKey]) {
          const bytes = Buffer.from(key, 'base64');
          assert.equal(bytes.length, SCRAM_HASHES[h]);
          assert.equal(bytes.toString('base64'), key);
        }
        assert.equal(`${parsed.iterations}:${parsed.salt}:${parsed.storedKey}:${parsed.serverKey}`, t, 'accepted text is read back unchanged');
      }),
      { numRuns: 3000 },
    );
  });

  test('property: valid credentials of any shape are accepted', () => {
    const hash = fc.constantFrom<ScramHash>('sha-1', 'sha-256', 'sha-512');
    const credentials = hash.chain((h) =>
      fc.tuple(
        fc.constant(h),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ minLength: SCRAM_HASHES[h], maxLength: SCRAM_HASHES[h] }),
        fc.uint8Array({ minLength: SCRAM_HASHES[h], maxLength: SCRAM_HASHES[h] }),
      ),
    );
    fc.assert(
      fc.property(credentials, ([h, iterations, ...bytes]) => {
        const text = [iterations, ...bytes.map((b) => Buffer.from(b).toString('base64'))].join(':');
        assert.ok(parseScramCredentials(text, h));
      }),
    );
  });

  test('an answer fits its request: scram takes 0 or credentials, the other kinds 1 or 0', () => {
    const auth: AuthRequest = { kind: 'auth', user: 'alice', server: 'example.com', password: 'pw' };
    assert.ok(readAnswer(SCRAM, { credentials: GOOD }) instanceof ScramCredentials);
    assert.equal(readAnswer(SCRAM, false), false);
    assert.equal(readAnswer(SCRAM, true), 'invalid', 'a bare 1 gives nothing to log in with');
    assert.equal(readAnswer(SCRAM, 'backend-error'), 'backend-error');
    assert.equal(readAnswer(SCRAM, { credentials: `0:${GOOD.slice(5)}` }), 'invalid');
    assert.equal(readAnswer({ ...SCRAM, hash: 'sha-512' }, { credentials: GOOD }), 'invalid');
    assert.equal(readAnswer(auth, { credentials: GOOD }), 'invalid', 'credentials for a password check are a bad answer');
    assert.equal(readAnswer(auth, true), true);
  });

  test('credentials never show their keys when logged or inspected', () => {
    const credentials = parseScramCredentials(GOOD, 'sha-256')!;
    const lines: string[] = [];
    pino({}, { write: (line: string) => void lines.push(line) }).info({ outcome: credentials, nested: { credentials } }, 'x');
    const shown = [lines.join(''), JSON.stringify(credentials), inspect(credentials), inspect({ a: [credentials] }), String(credentials)].join('\n');
    for (const key of [credentials.storedKey, credentials.serverKey]) assert.ok(!shown.includes(key));
  });
});

describe('SCRAM: the script protocols', () => {
  test('the request line is scram:USER:SERVER:HASH, with the id in tagged', () => {
    assert.equal(requestFields(SCRAM), 'scram:alice:example.com:sha-256');
    assert.equal(taggedCodec.encode(requestFields(SCRAM), 'k7').toString(), 'k7:scram:alice:example.com:sha-256\n');
    assert.equal(genericCodec.encode(requestFields(SCRAM)).toString(), 'scram:alice:example.com:sha-256\n');
    assert.deepEqual([genericCodec.scram, taggedCodec.scram, ejabberdCodec.scram], [true, true, false]);
  });

  /** Everything a decoder makes of `bytes`, fed split at `cuts`. */
  function decode(codec: ScriptCodec, bytes: Buffer, cuts: number[] = []): Array<[ScriptAnswer, string | undefined]> {
    const decoder = codec.createDecoder();
    const answers: Array<[ScriptAnswer, string | undefined]> = [];
    let from = 0;
    for (const cut of [...cuts.filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b), bytes.length]) {
      decoder.push(bytes.subarray(from, cut), (answer, id) => answers.push([answer, id]));
      from = cut;
    }
    return answers;
  }

  test('generic and tagged hand the text after 1: on as credentials, trailing CR and spaces dropped', () => {
    assert.deepEqual(decode(genericCodec, Buffer.from(`1:${GOOD} \r\n0\n1\n`)), [
      [{ credentials: GOOD }, undefined],
      [false, undefined],
      [true, undefined],
    ]);
    assert.deepEqual(decode(taggedCodec, Buffer.from(`a1:1:${GOOD}\r\nb2:0\nc3:E\nd4:1:\n`)), [
      [{ credentials: GOOD }, 'a1'],
      [false, 'b2'],
      ['backend-error', 'c3'],
      ['invalid', 'd4'],
    ]);
    assert.deepEqual(decode(genericCodec, Buffer.from('1:\n10\n')), [
      ['invalid', undefined],
      ['invalid', undefined],
    ]);
  });

  test('property: how the output is split does not change what is read', () => {
    const line = fc.oneof(
      fc.constant(`1:${GOOD}`),
      fc.constantFrom('0', '1', 'E', '1:', '1:x:y', 'maybe'),
      fc.string({ maxLength: 60 }).filter((s) => !s.includes('\n')),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 6 }), fc.array(fc.nat(800)), (lines, cuts) => {
        for (const codec of [genericCodec, taggedCodec]) {
          const text = lines.map((l, i) => (codec.tagged ? `i${i}:${l}` : l)).join('\n');
          const bytes = Buffer.from(`${text}\n`);
          let whole: unknown;
          try {
            whole = decode(codec, bytes);
          } catch (error) {
            whole = (error as Error).name;
          }
          let split: unknown;
          try {
            split = decode(codec, bytes, cuts);
          } catch (error) {
            split = (error as Error).name;
          }
          assert.deepEqual(split, whole);
        }
      }),
    );
  });
});

describe('SCRAM: the worker', () => {
  let restoreTime: () => void;
  beforeEach(() => (restoreTime = useFakeTime()));
  afterEach(() => restoreTime());

  async function started(codec: ScriptCodec) {
    const launcher = new FakeLauncher();
    const { log, lines } = captureLog();
    const restarts: string[] = [];
    const worker = new ScriptWorker(
      { id: 1, command: COMMAND, codec, launch: launcher.launch, depth: 8, timeoutMs: 1000, log, restartDelay: () => 0, closeGraceMs: 10 },
      { capacity: () => {}, stranded: () => {}, restarted: (reason) => restarts.push(reason) },
    );
    worker.start();
    await settle();
    const job = (request: AuthRequest = SCRAM) => makeJob(codec, request, performance.now() + 1000);
    return { worker, launcher, lines, restarts, job };
  }

  for (const codec of [genericCodec, taggedCodec]) {
    test(`${codec.name}: credentials reach their request; a bad answer is a bad answer and restarts`, async () => {
      const { worker, launcher, restarts, job } = await started(codec);
      const say = (answer: string, tag?: string) => launcher.last.say(`${tag === undefined ? '' : `${tag}:`}${answer}\n`);
      const a = job();
      worker.assign(a);
      say(`1:${GOOD}`, a.tag);
      assert.ok(a.outcome instanceof ScramCredentials);
      assert.equal(a.outcome.storedKey, KEYS.storedKey.toString('base64'));
      const b = job();
      worker.assign(b);
      say('0', b.tag);
      assert.equal(b.outcome, false);
      assert.deepEqual(restarts, []);
      const c = job({ ...SCRAM, hash: 'sha-1' });
      worker.assign(c);
      say(`1:${GOOD}`, c.tag);
      assert.ok(c.outcome instanceof Failure && c.outcome.reason === 'bad-answer', 'sha-256 keys for a sha-1 request');
      assert.deepEqual(restarts, ['bad-answer']);
    });
  }

  test("the keys of recent answers are masked in the script's stderr, as base64, hex and base64url", async () => {
    const { worker, launcher, lines, job } = await started(taggedCodec);
    const a = job();
    worker.assign(a);
    launcher.last.say(`${a.tag}:1:${GOOD}\n`);
    const { storedKey, serverKey } = KEYS;
    const forms = [storedKey.toString('base64'), serverKey.toString('hex'), serverKey.toString('hex').toUpperCase(), storedKey.toString('base64url')];
    const pyRepr = `b'${[...storedKey].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('')}'`;
    launcher.last.handlers.diagnostic(Buffer.from(`${forms.map((form) => `key ${form} `).join('')} repr ${pyRepr}\n`));
    const logged = JSON.stringify(lines);
    assert.match(logged, /script stderr/);
    for (const form of [...forms, pyRepr]) assert.ok(!logged.includes(form.slice(2, -2)), form);
  });

  test('with the ejabberd protocol a scram request is unsupported and never reaches a script', async () => {
    const launcher = new FakeLauncher();
    const { log } = captureLog();
    const pool = new ScriptPool({
      processes: 1,
      depth: 1,
      queueLimit: 10,
      timeoutMs: 1000,
      codec: ejabberdCodec,
      log,
      createWorker: ({ id, depth }, events) =>
        new ScriptWorker(
          { id, depth, command: COMMAND, codec: ejabberdCodec, launch: launcher.launch, timeoutMs: 1000, log, restartDelay: () => 0, closeGraceMs: 10 },
          events,
        ),
    });
    pool.start();
    await settle();
    let outcome: Outcome | undefined;
    pool.submit(SCRAM, performance.now(), (o) => (outcome = o));
    assert.ok(outcome instanceof Failure);
    assert.equal(outcome.reason, 'unsupported');
    assert.deepEqual(launcher.last.lines(), [], 'the script was not asked');
    const error = stanzaErrorFor(outcome);
    assert.deepEqual([error.type, error.condition], ['cancel', 'feature-not-implemented']);
    await pool.close();
  });
});

describe('SCRAM: the edge and the cache', () => {
  const query = (attrs: Record<string, string>) => xml('scram', { xmlns: 'urn:x-extauth:0', ...attrs });

  test('the query needs a known hash; server defaults to the requester', () => {
    assert.deepEqual(parseAuthQuery('get', query({ user: 'alice', hash: 'sha-512' }), 'example.com'), {
      kind: 'scram',
      user: 'alice',
      server: 'example.com',
      hash: 'sha-512',
    });
    for (const attrs of [{ user: 'alice' }, { user: 'alice', hash: 'md5' }, { user: 'alice', hash: 'SHA-256' }, { user: 'alice', hash: '' }]) {
      assert.throws(
        () => parseAuthQuery('get', query(attrs), 'example.com'),
        (error: unknown) => error instanceof StanzaError && error.type === 'modify' && error.condition === 'bad-request',
        JSON.stringify(attrs),
      );
    }
    assert.throws(() => parseAuthQuery('set', query({ user: 'alice', hash: 'sha-256' }), 'example.com'), /bad-request/);
  });

  test('the cache never keeps credentials, never answers scram itself, and an outage stays an outage', () => {
    const asked: Array<(outcome: Outcome) => void> = [];
    const cache = new CredentialCache({ ttlMs: 60_000, staleMs: 600_000, size: 10, log: pino({ level: 'silent' }) }, (_request, _at, done) => asked.push(done));
    const credentials = parseScramCredentials(GOOD, 'sha-256')!;
    const outcomes: Outcome[] = [];
    for (const answer of [credentials, true as Outcome, new Failure('timeout', 'no answer'), new Failure('backend-error', 'down')]) {
      cache.submit(SCRAM, 0, (o) => outcomes.push(o), 'example.com');
      asked.at(-1)!(answer);
    }
    assert.equal(asked.length, 4, 'every scram request went to the script');
    assert.equal(outcomes[0], credentials);
    assert.ok(outcomes[2] instanceof Failure && outcomes[3] instanceof Failure, 'no stale answer stands in for credentials');
    assert.equal(cache.size, 0, 'nothing kept');
    assert.deepEqual(cache.stats, { hits: 0, misses: 0, stale: 0 });
  });
});
