// The forget query through the built component: the cached acceptances of one account go
// (under every requester domain), the script is never asked, and it answers with the cache off too.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nextId } from '../support/fake-server.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

function forget(h: Harness, attrs: string, from = 'example.com', type = 'set') {
  const id = nextId();
  return h.server.request(`<iq type='${type}' id='${id}' from='${from}' to='auth.example.com'><forget xmlns='urn:x-extauth:0' ${attrs}/></iq>`, id);
}

const scriptAsked = (h: Harness, user: string) => h.records().filter((r) => r.kind === 'auth' && r.user === user).length;

describe('forget', () => {
  test('drops the cached acceptances of that account only; the script is not asked for the forget', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_CACHE_TTL: '600', EXTERNAL_AUTH_ALLOW: 'example.com,other.example' } });
    try {
      for (const from of ['example.com', 'other.example']) {
        for (let i = 0; i < 2; i++) {
          assert.equal(resultOf(await h.ask({ from, user: 'alice', server: 'example.com', password: 'good' })), 'true');
          assert.equal(resultOf(await h.ask({ from, user: 'bob', server: 'example.com', password: 'good' })), 'true');
        }
      }
      assert.deepEqual([scriptAsked(h, 'alice'), scriptAsked(h, 'bob')], [2, 2], 'the repeats came from the cache');

      const reply = await forget(h, "user='alice'");
      assert.equal(reply.attrs.type, 'result');
      assert.deepEqual(reply.children, [], 'an empty result');
      assert.ok(!h.records().some((r) => r.kind === 'forget'), 'the script never hears of it');

      for (const from of ['example.com', 'other.example']) {
        assert.equal(resultOf(await h.ask({ from, user: 'alice', server: 'example.com', password: 'good' })), 'true');
        assert.equal(resultOf(await h.ask({ from, user: 'bob', server: 'example.com', password: 'good' })), 'true');
      }
      assert.deepEqual([scriptAsked(h, 'alice'), scriptAsked(h, 'bob')], [4, 2], 'alice asked again under both requesters, bob still cached');
      const answered = h.logs().find((l) => l.msg === 'query answered' && l.kind === 'forget');
      assert.deepEqual([answered?.user, answered?.server], ['alice', 'example.com']);
    } finally {
      await h.cleanup();
    }
  });

  test('answers result with the cache off; bad requests and strangers are refused as for any query', async () => {
    const h = await startHarness();
    try {
      assert.equal((await forget(h, "user='alice' server='example.com'")).attrs.type, 'result');
      assert.equal(errorOf(await forget(h, "user='alice'", 'example.com', 'get')).condition, 'bad-request');
      assert.equal(errorOf(await forget(h, "server='example.com'")).condition, 'bad-request');
      assert.equal(errorOf(await forget(h, "user='a:b'")).condition, 'bad-request');
      assert.equal(errorOf(await forget(h, "user='alice'", 'evil.example')).condition, 'forbidden');
      assert.equal(h.records().length, 0, 'the script was never asked');
    } finally {
      await h.cleanup();
    }
  });
});
