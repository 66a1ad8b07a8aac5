// The credential cache through the built component: a fake server asks, a script whose backend
// is taken down mid-load answers (or does not).
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { withTimeout } from '../support/fake-server.js';
import { freePorts } from '../../support/ports.js';
import { errorOf, resultOf, ROOT, startHarness, type Harness } from './harness.js';

const OUTAGE_SCRIPT = path.join(ROOT, 'test/fixtures/scripts/outage.mjs');
const CACHED = ['u0', 'u1', 'u2', 'u3', 'u4'];
const passwordOf = (user: string) => `good-pw-${user}-41c7`;
const STALE_EVENT = 'cache.stale-answer';
const OUTAGE_CONDITIONS = ['internal-server-error', 'remote-server-timeout'];

function startOutageHarness(mode: 'crash' | 'hang', env: Record<string, string> = {}): Promise<Harness> {
  return startHarness({
    command: (recordFile) => `${OUTAGE_SCRIPT} --down ${recordFile}.down --mode ${mode} --record ${recordFile}`,
    env: {
      // A TTL far shorter than the load: entries soon need the script, and then the stale window answers.
      EXTERNAL_AUTH_CACHE_TTL: '0.05',
      EXTERNAL_AUTH_CACHE_STALE: '600',
      EXTERNAL_AUTH_TIMEOUT: '1',
      EXTERNAL_AUTH_PROCESSES: '2',
      ...env,
    },
  });
}

const takeDown = (h: Harness) => writeFileSync(`${h.recordFile}.down`, '');
const bringUp = (h: Harness) => rmSync(`${h.recordFile}.down`);

function assertOutageError(reply: Parameters<typeof errorOf>[0], what: string): void {
  const error = errorOf(reply);
  assert.equal(error.type, 'wait', `${what}: an outage error, not a refusal (${reply.toString()})`);
  assert.ok(OUTAGE_CONDITIONS.includes(error.condition ?? ''), `${what}: ${error.condition}`);
}

/** Cached users log in in a loop while the backend goes down under them. */
async function outageUnderLoad(mode: 'crash' | 'hang'): Promise<void> {
  const h = await startOutageHarness(mode);
  try {
    for (const user of CACHED) assert.equal(resultOf(await h.ask({ user, password: passwordOf(user) })), 'true', `${user} warms the cache`);

    const results: Array<{ user: string; down: boolean; result: string | undefined; error: string | undefined }> = [];
    let down = false;
    let stop = false;
    const loops = CACHED.map(async (user) => {
      while (!stop) {
        const wasDown = down;
        const reply = await h.ask({ user, password: passwordOf(user) });
        results.push({ user, down: wasDown, result: resultOf(reply), error: errorOf(reply).condition });
      }
    });
    const countWhere = (predicate: (r: (typeof results)[number]) => boolean) => results.filter(predicate).length;
    const until = async (what: string, condition: () => boolean) => {
      await withTimeout(
        (async () => {
          while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
        })(),
        30_000,
        `never: ${what}`,
      );
    };

    await until('each cached user logged in 3 times before the outage', () => CACHED.every((user) => countWhere((r) => r.user === user) >= 3));
    takeDown(h);
    down = true;
    await h.waitForLog((line) => line.event === STALE_EVENT, 30_000);

    // Meanwhile, nobody else gets in, and nobody is told "wrong password" either.
    assertOutageError(await h.ask({ user: 'newcomer', password: 'good-never-seen' }), 'a user not in the cache');
    assertOutageError(await h.ask({ user: 'u0', password: 'good-but-another-one' }), 'a cached user with another password');
    assertOutageError(await h.ask({ user: 'u1', password: 'wrong' }), 'a cached user with a wrong password');
    assertOutageError(await h.ask({ kind: 'isuser', user: 'stranger' }), 'isuser of a user not in the cache');

    await until('each cached user logged in 3 more times during the outage', () => CACHED.every((user) => countWhere((r) => r.user === user && r.down) >= 3));
    stop = true;
    await Promise.all(loops);

    const refused = results.filter((r) => r.result !== 'true');
    assert.deepEqual(refused, [], 'every cached login succeeded, before and during the outage');
    const stale = h.logs().filter((line) => line.event === STALE_EVENT);
    assert.ok(
      stale.every((line) => line.level === 40 && CACHED.includes(line.user as string)),
      'warn lines, for cached users only',
    );
    assert.ok(!CACHED.some((user) => h.output().includes(passwordOf(user))), 'no password in the output');

    // Back up: the script is asked again (once its restart back-off allows) and new users get in.
    bringUp(h);
    await withTimeout(
      (async () => {
        while (resultOf(await h.ask({ user: 'newcomer', password: 'good-never-seen' })) !== 'true');
      })(),
      30_000,
      'a new user never logged in after the backend came back',
    );
  } finally {
    await h.cleanup();
  }
}

describe('credential cache through the component', () => {
  test('the script crashes mid-load: cached users keep logging in, everyone else gets an outage error', async () => {
    await outageUnderLoad('crash');
  });

  test('the script hangs mid-load: cached users keep logging in, everyone else gets an outage error', async () => {
    await outageUnderLoad('hang');
  });

  test('within the TTL a repeat login does not reach the script; another password does', async () => {
    const [port] = await freePorts(1);
    const h = await startOutageHarness('crash', {
      EXTERNAL_AUTH_CACHE_TTL: '600',
      EXTERNAL_AUTH_ALLOW: 'example.com,other.example',
      HTTP_LISTEN: `127.0.0.1:${port}`,
    });
    try {
      const asked = () => h.records().length;
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-1' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-1' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-1', server: 'example.com' })), 'true', 'the default server is the requester domain');
      assert.equal(asked(), 1, 'the script was asked once');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-2' })), 'true', 'a changed password works at once');
      assert.equal(asked(), 3);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-2' })), 'true');
      assert.equal(asked(), 3, 'the changed password is cached in turn');
      assert.equal(resultOf(await h.ask({ kind: 'setpass', user: 'alice', password: 'good-3' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-2' })), 'true');
      assert.equal(asked(), 5, 'after setpass the script is asked again');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-2', server: 'example.com', from: 'other.example' })), 'true');
      assert.equal(asked(), 6, 'another requester domain has its own entries');
      // The same story in the metrics: three logins answered from the cache, the others asked.
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /^extauth_cache_hits_total 3$/m);
      assert.match(metrics, /^extauth_cache_misses_total 5$/m);
      assert.match(metrics, /^extauth_cache_stale_answers_total 0$/m);
      assert.match(metrics, /^extauth_cache_entries 2$/m);
    } finally {
      await h.cleanup();
    }
  });
});
