import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { RECONNECT_BACKOFF, backoffDelay, restartDelay, type BackoffPolicy } from '../../src/core/backoff.js';

const exactPolicy: BackoffPolicy = { baseMs: 100, capMs: 1000, jitter: 0 };
const never = () => 0;
const almostOne = () => 0.999999;

describe('backoffDelay', () => {
  test('doubles from the base, then stays at the cap', () => {
    const delays = Array.from({ length: 8 }, (_, attempt) => backoffDelay(exactPolicy, attempt, never));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  });

  test('without jitter, the random source does not matter', () => {
    assert.equal(backoffDelay(exactPolicy, 2, almostOne), 400);
    assert.equal(backoffDelay(exactPolicy, 2), 400);
  });

  test('huge attempt numbers give the cap, not Infinity or NaN', () => {
    for (const attempt of [31, 100, 1e6, Number.MAX_SAFE_INTEGER]) {
      assert.equal(backoffDelay(exactPolicy, attempt, never), 1000);
      assert.equal(backoffDelay(RECONNECT_BACKOFF, attempt, never), RECONNECT_BACKOFF.capMs);
    }
  });

  test('jitter 0.5: a random 0 gives the exact delay, a random near 1 about half', () => {
    const policy: BackoffPolicy = { baseMs: 1000, capMs: 60_000, jitter: 0.5 };
    assert.equal(backoffDelay(policy, 0, never), 1000);
    assert.equal(
      backoffDelay(policy, 0, () => 0.5),
      750,
    );
    assert.equal(backoffDelay(policy, 0, almostOne), 500);
    assert.equal(backoffDelay(policy, 3, almostOne), 4000);
  });

  test('returns whole milliseconds', () => {
    assert.ok(Number.isInteger(backoffDelay({ baseMs: 3, capMs: 100, jitter: 0.33 }, 1, () => 0.123)));
  });

  test('property: grows monotonically with the attempt (jitter 0) and never exceeds the cap', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 1_000_000 }), (baseMs, capExtra) => {
        const policy: BackoffPolicy = { baseMs, capMs: baseMs + capExtra, jitter: 0 };
        let previous = 0;
        for (let attempt = 0; attempt < 40; attempt++) {
          const delay = backoffDelay(policy, attempt, never);
          assert.ok(delay >= previous, `attempt ${attempt}: ${delay} < ${previous}`);
          assert.ok(delay <= policy.capMs);
          previous = delay;
        }
        assert.equal(previous, policy.capMs, 'reaches the cap');
      }),
    );
  });

  test('property: with jitter the delay lies in [exact * (1 - jitter), exact]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 0, max: 50 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, capExtra, jitter, attempt, r) => {
          const policy: BackoffPolicy = { baseMs, capMs: baseMs + capExtra, jitter };
          const exact = backoffDelay({ ...policy, jitter: 0 }, attempt, never);
          const delay = backoffDelay(policy, attempt, () => r);
          assert.ok(delay <= exact, `${delay} > ${exact}`);
          assert.ok(delay >= Math.floor(exact * (1 - jitter)), `${delay} < ${exact} * (1 - ${jitter})`);
        },
      ),
    );
  });

  test('with the real random source, reconnect delays stay in range', () => {
    for (let attempt = 0; attempt < 20; attempt++) {
      const exact = Math.min(RECONNECT_BACKOFF.capMs, RECONNECT_BACKOFF.baseMs * 2 ** attempt);
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(RECONNECT_BACKOFF, attempt);
        assert.ok(delay >= exact * (1 - RECONNECT_BACKOFF.jitter) && delay <= exact, `${attempt}: ${delay}`);
      }
    }
  });
});

describe('restartDelay', () => {
  test('the first restart is immediate', () => {
    assert.equal(restartDelay(0), 0);
    assert.equal(restartDelay(0, almostOne), 0);
    assert.equal(restartDelay(0, never), 0);
  });

  test('later restarts back off from the base to the cap', () => {
    const delays = Array.from({ length: 10 }, (_, i) => restartDelay(i, never));
    assert.deepEqual(delays, [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    assert.equal(restartDelay(1000, never), 5000);
  });

  test('jitter keeps later restarts within 20% below the exact delay', () => {
    assert.equal(restartDelay(1, almostOne), 80);
    assert.equal(restartDelay(50, almostOne), 4000);
    for (let i = 0; i < 100; i++) {
      const delay = restartDelay(3);
      assert.ok(delay >= 320 && delay <= 400, String(delay));
    }
  });
});
