import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import pino from 'pino';
import { CredentialCache } from '../../src/cache/credential-cache.js';
import type { AuthRequest, RequestKind } from '../../src/core/auth-request.js';
import { Failure, type FailureReason, type Outcome } from '../../src/core/failure.js';

const TTL = 60_000;
const STALE = 600_000;
const HOST = 'example.com';
const OUTAGES: FailureReason[] = ['timeout', 'crashed', 'bad-answer', 'backend-error', 'cannot-start'];
const NOT_OUTAGES: FailureReason[] = ['overloaded', 'stopping', 'too-large'];

interface Asked {
  readonly request: AuthRequest;
  answer(outcome: Outcome): void;
}

/** A cache over a fake script whose every request the test answers by hand, on a clock it sets. */
function setup(o: { size?: number; staleMs?: number } = {}) {
  let clock = 1_000_000;
  const asked: Asked[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const cache = new CredentialCache(
    { ttlMs: TTL, staleMs: o.staleMs ?? STALE, size: o.size ?? 100, log, now: () => clock },
    (request, _arrivedAt, done) => void asked.push({ request, answer: done }),
  );

  /** Submits; resolves what the requester is told. `answer` answers for the script, if it is asked. */
  function ask(
    kind: RequestKind,
    user: string,
    password?: string,
    answer?: Outcome,
    requester = HOST,
    server = HOST,
  ): { outcome: Outcome | undefined; askedScript: boolean } {
    const before = asked.length;
    let outcome: Outcome | undefined;
    let calls = 0;
    const request: AuthRequest = password === undefined ? { kind, user, server } : { kind, user, server, password };
    cache.submit(
      request,
      0,
      (result) => {
        calls++;
        outcome = result;
      },
      requester,
    );
    const askedScript = asked.length > before;
    if (askedScript && answer !== undefined) asked.at(-1)!.answer(answer);
    assert.ok(calls <= 1, 'done is called at most once');
    return { outcome, askedScript };
  }
  const auth = (user: string, password: string, answer?: Outcome, requester?: string, server?: string) =>
    ask('auth', user, password, answer, requester, server);
  const advance = (ms: number) => void (clock += ms);
  return { cache, asked, lines, ask, auth, advance };
}

const fromCache = { outcome: true, askedScript: false };
const fromScript = (outcome: Outcome) => ({ outcome, askedScript: true });

describe('CredentialCache', () => {
  test('an accepted password is answered again within the TTL without asking the script', () => {
    const { auth, cache } = setup();
    assert.deepEqual(auth('alice', 'right', true), fromScript(true));
    assert.deepEqual(auth('alice', 'right'), fromCache);
    assert.deepEqual(auth('alice', 'right'), fromCache);
    assert.deepEqual(cache.stats, { hits: 2, misses: 1, stale: 0 });
    assert.equal(cache.size, 1);
  });

  test('after the TTL the script is asked again, however often the entry was used (hits do not extend it)', () => {
    const { auth, advance } = setup();
    auth('alice', 'right', true);
    advance(TTL - 1);
    assert.deepEqual(auth('alice', 'right'), fromCache);
    advance(2);
    assert.deepEqual(auth('alice', 'right', true), fromScript(true));
    // The new acceptance starts a new TTL.
    advance(TTL - 1);
    assert.deepEqual(auth('alice', 'right'), fromCache);
  });

  test('a different password always goes to the script: a changed password works at once, the old one stops when the script says so', () => {
    const { auth } = setup();
    auth('alice', 'old', true);
    assert.deepEqual(auth('alice', 'wrong', false), fromScript(false));
    assert.deepEqual(auth('alice', 'old'), fromCache, 'a refused other password leaves the cached one alone');
    assert.deepEqual(auth('alice', 'new', true), fromScript(true), 'the changed password is accepted at once');
    assert.deepEqual(auth('alice', 'old', false), fromScript(false), 'the old password is asked again and refused');
    assert.deepEqual(auth('alice', 'new'), fromCache);
  });

  test('a refusal is never cached', () => {
    const { auth, cache } = setup();
    assert.deepEqual(auth('alice', 'wrong', false), fromScript(false));
    assert.deepEqual(auth('alice', 'wrong', true), fromScript(true), 'asked again, and the script may change its mind');
    assert.equal(cache.stats.hits, 0);
  });

  test('a refusal of the cached password drops it, so it no longer answers during an outage', () => {
    const { auth, advance } = setup();
    auth('alice', 'right', true);
    advance(TTL + 1);
    assert.deepEqual(auth('alice', 'right', false), fromScript(false));
    const failure = new Failure('crashed', 'the auth script exited');
    assert.deepEqual(auth('alice', 'right', failure), fromScript(failure));
  });

  for (const reason of OUTAGES) {
    test(`when the script fails (${reason}), a matching acceptance within TTL + STALE answers, with a warn line`, () => {
      const { auth, advance, cache, lines } = setup();
      auth('alice', 'right-pw-7f3a', true);
      advance(TTL + STALE - 1);
      lines.length = 0;
      assert.deepEqual(auth('alice', 'right-pw-7f3a', new Failure(reason, 'down')), fromScript(true));
      assert.deepEqual(cache.stats, { hits: 0, misses: 2, stale: 1 });
      const warn = lines.find((line) => line.level === 40);
      assert.ok(warn, 'a warn line');
      assert.equal(warn.user, 'alice');
      assert.equal(warn.reason, reason);
      assert.ok(!JSON.stringify(lines).includes('right-pw-7f3a'), 'the password is not logged');
    });
  }

  test('during an outage everything else gets the failure unchanged', () => {
    const { auth, ask, advance, cache } = setup();
    auth('alice', 'right', true);
    auth('bob', 'right', true);
    ask('isuser', 'carol', undefined, true);
    advance(TTL + 1);
    const failure = new Failure('timeout', 'no answer');
    assert.equal(auth('alice', 'other', failure).outcome, failure, 'another password');
    assert.equal(auth('mallory', 'right', failure).outcome, failure, 'an unknown user');
    assert.equal(auth('bob', 'right', failure, 'other.example').outcome, failure, 'another requester domain');
    assert.equal(auth('bob', 'right', failure, HOST, 'other.example').outcome, failure, 'another server');
    assert.equal(ask('isuser', 'dave', undefined, failure).outcome, failure, 'isuser of an unknown user');
    assert.equal(ask('isuser', 'alice', undefined, failure).outcome, failure, 'an accepted password is no isuser answer');
    assert.equal(auth('carol', 'anything', failure).outcome, failure, 'isuser true is no password');
    advance(STALE);
    assert.equal(auth('bob', 'right', failure).outcome, failure, 'older than TTL + STALE');
    assert.equal(cache.stats.stale, 0);
  });

  for (const reason of NOT_OUTAGES) {
    test(`a failure that is no outage (${reason}) is passed on even with a matching acceptance`, () => {
      const { auth, advance } = setup();
      auth('alice', 'right', true);
      advance(TTL + 1);
      const failure = new Failure(reason, 'no');
      assert.equal(auth('alice', 'right', failure).outcome, failure);
    });
  }

  test('with STALE 0 nothing answers for a failing script', () => {
    const { auth, advance } = setup({ staleMs: 0 });
    auth('alice', 'right', true);
    advance(TTL + 1);
    const failure = new Failure('crashed', 'gone');
    assert.equal(auth('alice', 'right', failure).outcome, failure);
  });

  test('isuser true is cached, isuser false is not and drops a cached true', () => {
    const { ask, advance } = setup();
    assert.deepEqual(ask('isuser', 'alice', undefined, true), fromScript(true));
    assert.deepEqual(ask('isuser', 'alice'), fromCache);
    assert.deepEqual(ask('isuser', 'nobody', undefined, false), fromScript(false));
    assert.deepEqual(ask('isuser', 'nobody', undefined, false), fromScript(false));
    advance(TTL + 1);
    assert.deepEqual(ask('isuser', 'alice', undefined, new Failure('timeout', 'x')), fromScript(true), 'stale isuser during an outage');
    assert.deepEqual(ask('isuser', 'alice', undefined, false), fromScript(false));
    const failure = new Failure('timeout', 'x');
    assert.equal(ask('isuser', 'alice', undefined, failure).outcome, failure, 'the refusal dropped it');
  });

  test('entries are per requester domain, user and server', () => {
    const { auth } = setup();
    auth('alice', 'right', true, 'a.example', 'a.example');
    assert.deepEqual(auth('alice', 'right', undefined, 'a.example', 'a.example'), fromCache);
    assert.equal(auth('alice', 'right', undefined, 'b.example', 'a.example').askedScript, true, 'another requester');
    assert.equal(auth('alice', 'right', undefined, 'a.example', 'b.example').askedScript, true, 'another server');
    assert.equal(auth('bob', 'right', undefined, 'a.example', 'a.example').askedScript, true, 'another user');
  });

  for (const kind of ['setpass', 'removeuser'] as const) {
    for (const answer of [true, false, new Failure('crashed', 'x')]) {
      test(`${kind} drops the user's entries, whatever the script answers (${String(answer)})`, () => {
        const { auth, ask } = setup();
        auth('alice', 'right', true);
        auth('alice', 'right', true, 'other.example');
        ask('isuser', 'alice', undefined, true);
        auth('bob', 'right', true);
        const changed = ask(kind, 'alice', kind === 'setpass' ? 'new' : undefined, answer);
        assert.deepEqual(changed, fromScript(answer), 'the change itself goes to the script and its answer back');
        assert.equal(auth('alice', 'right').askedScript, true);
        assert.equal(auth('alice', 'right', undefined, 'other.example').askedScript, true);
        assert.equal(ask('isuser', 'alice').askedScript, true);
        assert.deepEqual(auth('bob', 'right'), fromCache, 'other users keep theirs');
      });
    }
  }

  test("forgetUser drops the user's entries under every requester domain, asks no script, and keeps no acceptance asked before it", () => {
    const { cache, asked, auth, ask } = setup();
    auth('alice', 'right', true);
    auth('alice', 'right', true, 'other.example');
    ask('isuser', 'alice', undefined, true);
    auth('bob', 'right', true);
    let told: Outcome | undefined;
    cache.submit({ kind: 'auth', user: 'alice', server: HOST, password: 'pending' }, 0, (o) => (told = o), HOST);
    const before = asked.length;
    cache.forgetUser('alice', HOST);
    assert.equal(asked.length, before, 'the script is not asked');
    asked.at(-1)!.answer(true); // asked before the forget, settled after
    assert.equal(told, true);
    assert.equal(auth('alice', 'right').askedScript, true);
    assert.equal(auth('alice', 'right', undefined, 'other.example').askedScript, true);
    assert.equal(ask('isuser', 'alice').askedScript, true);
    assert.equal(auth('alice', 'pending').askedScript, true, 'the acceptance that settled after the forget was not kept');
    assert.deepEqual(auth('bob', 'right'), fromCache, 'other users keep theirs');
  });

  test('the entries are dropped as soon as a change is asked, not only when it is answered', () => {
    const { cache, auth } = setup();
    auth('alice', 'old', true);
    cache.submit({ kind: 'setpass', user: 'alice', server: HOST, password: 'new' }, 0, () => {}, HOST); // left unanswered
    assert.equal(auth('alice', 'old').askedScript, true);
  });

  test('an acceptance asked for before a password change settled is not kept', () => {
    const { cache, asked, auth } = setup();
    let told: Outcome | undefined;
    cache.submit({ kind: 'auth', user: 'alice', server: HOST, password: 'old' }, 0, (o) => (told = o), HOST);
    cache.submit({ kind: 'setpass', user: 'alice', server: HOST, password: 'new' }, 0, () => {}, HOST);
    asked[1]!.answer(true); // the change settles first
    asked[0]!.answer(true); // then the old password's yes, asked before it
    assert.equal(told, true, 'the answer itself is passed on');
    assert.equal(auth('alice', 'old').askedScript, true, 'but not kept');
  });

  test('tryregister goes to the script and leaves the cache alone', () => {
    const { auth, ask } = setup();
    auth('alice', 'right', true);
    assert.deepEqual(ask('tryregister', 'alice', 'x', false), fromScript(false));
    assert.deepEqual(auth('alice', 'right'), fromCache);
  });

  test('holds at most SIZE users, dropping the least recently used', () => {
    const { auth, cache } = setup({ size: 2 });
    auth('a', 'pw', true);
    auth('b', 'pw', true);
    assert.deepEqual(auth('a', 'pw'), fromCache); // a is now the most recent
    auth('c', 'pw', true); // drops b
    assert.equal(cache.size, 2);
    assert.deepEqual(auth('a', 'pw'), fromCache);
    assert.deepEqual(auth('c', 'pw'), fromCache);
    assert.equal(auth('b', 'pw').askedScript, true);
  });

  test('holds the password only as a keyed hash', () => {
    const password = 'hunter2-0b5e-plain';
    const one = setup();
    one.auth('alice', password, true);
    const dump = inspect(one.cache, { depth: Infinity, showHidden: true, maxArrayLength: Infinity, maxStringLength: Infinity });
    assert.ok(!dump.includes(password), 'the password is not held as text');
    assert.ok(!dump.includes(Buffer.from(password).toString('hex').replace(/(..)/g, '$1 ').trim()), 'nor as bytes');
    const two = setup();
    two.auth('alice', password, true);
    const hashOf = (cache: CredentialCache) => [...(cache as unknown as { entries: Map<string, { hash: string }> }).entries.values()][0]!.hash;
    assert.equal(hashOf(one.cache).length, 32, 'holds a 32-byte digest');
    assert.notEqual(hashOf(one.cache), hashOf(two.cache), 'keyed per process: the same password hashes differently');
  });

  test('a TTL of 0 is no cache', () => {
    assert.throws(() => new CredentialCache({ ttlMs: 0, staleMs: 1, size: 1, log: pino({ level: 'silent' }) }, () => {}));
  });
});
