// SCRAM credentials through the built component and the fixture script: generic and tagged,
// the ejabberd protocol refusing the kind without asking the script, bad answers as outages,
// and the keys never in the log (the script even prints them on stderr).
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { freePorts } from '../support/ports.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

const DIGESTS = { 'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
type Hash = keyof typeof DIGESTS;

/** What the fixture answers for the password "pencil" (salt and iterations as it uses them). */
function expected(hash: Hash) {
  const digest = DIGESTS[hash];
  const salt = Buffer.from('QSXCR+Q6sek8bf92');
  const salted = pbkdf2Sync('pencil', salt, 4096, createHash(digest).digest().length, digest);
  const storedKey = createHash(digest).update(createHmac(digest, salted).update('Client Key').digest()).digest();
  const serverKey = createHmac(digest, salted).update('Server Key').digest();
  return { iterations: '4096', salt: salt.toString('base64'), storedKey, serverKey };
}

/** `hash` null: the query has no hash attribute. */
const scram = (h: Harness, user: string, hash: string | null = 'sha-256') => h.ask({ kind: 'scram', user, ...(hash === null ? {} : { hash }) });
const outcome = (reply: Element) => {
  const error = errorOf(reply);
  return error.condition === undefined ? resultOf(reply) : `${error.type}/${error.condition}`;
};
const scramChild = (reply: Element) => reply.getChild('scram', 'urn:x-extauth:0');

const PROTOCOLS = {
  generic: { env: { EXTERNAL_AUTH_PROTOCOL: 'generic' }, scriptArgs: ['--protocol', 'generic'] },
  tagged: { env: { EXTERNAL_AUTH_PROTOCOL: 'tagged' }, scriptArgs: ['--protocol', 'tagged'] },
};

describe('scram queries', () => {
  for (const [name, setup] of Object.entries(PROTOCOLS)) {
    test(`${name}: credentials of each hash, false for an unknown user, bad answers are outages, a bad query is bad-request`, async () => {
      const [port] = await freePorts(1);
      const h = await startHarness({ ...setup, env: { ...setup.env, HTTP_LISTEN: `127.0.0.1:${port}` } });
      try {
        for (const hash of Object.keys(DIGESTS) as Hash[]) {
          const reply = await scram(h, 'alice', hash);
          const child = scramChild(reply);
          assert.ok(child, `${hash}: ${reply.toString()}`);
          const want = expected(hash);
          assert.deepEqual(child.attrs, {
            xmlns: 'urn:x-extauth:0',
            result: 'true',
            iterations: want.iterations,
            salt: want.salt,
            'stored-key': want.storedKey.toString('base64'),
            'server-key': want.serverKey.toString('base64'),
          });
        }
        const records = h.records().filter((r) => r.kind === 'scram');
        assert.deepEqual(
          records.map((r) => r.raw),
          ['scram:alice:example.com:sha-1', 'scram:alice:example.com:sha-256', 'scram:alice:example.com:sha-512'],
        );
        const refused = await scram(h, 'nobody');
        assert.equal(outcome(refused), 'false');
        assert.deepEqual(scramChild(refused)?.attrs, { xmlns: 'urn:x-extauth:0', result: 'false' });

        for (const user of ['badlen', 'badb64', 'iter0', 'iter10000001', 'bare1']) {
          assert.equal(outcome(await scram(h, user)), 'wait/internal-server-error', user);
        }
        assert.equal(outcome(await scram(h, 'alice', null)), 'modify/bad-request', 'no hash');
        assert.equal(outcome(await scram(h, 'alice', 'md5')), 'modify/bad-request', 'an unknown hash');
        assert.equal(outcome(await h.ask({ user: 'alice', password: 'good' })), 'true', 'auth unchanged');
        assert.equal(outcome(await scram(h, 'alice')), 'true', 'and back to normal');

        const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        assert.match(metrics, /^extauth_requests_total\{kind="scram",outcome="true"\} 4$/m);
        assert.match(metrics, /^extauth_requests_total\{kind="scram",outcome="false"\} 1$/m);
        assert.match(metrics, /^extauth_requests_total\{kind="scram",outcome="internal-server-error"\} 5$/m);
      } finally {
        await h.cleanup();
      }
    });
  }

  test('ejabberd protocol: cancel/feature-not-implemented, and the script is never asked', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }, scriptArgs: ['--protocol', 'ejabberd'] });
    try {
      assert.equal(outcome(await scram(h, 'alice')), 'cancel/feature-not-implemented');
      assert.equal(outcome(await h.ask({ user: 'alice', password: 'good' })), 'true');
      assert.deepEqual(
        h.records().map((r) => r.kind),
        ['auth'],
        "the script's own record holds only the auth request",
      );
    } finally {
      await h.cleanup();
    }
  });

  test('the keys never reach the log, at trace level, even when the script prints them on stderr; the cache never keeps them', async () => {
    const h = await startHarness({
      ...PROTOCOLS.tagged,
      env: { ...PROTOCOLS.tagged.env, LOG_LEVEL: 'trace', EXTERNAL_AUTH_CACHE_TTL: '60', EXTERNAL_AUTH_CACHE_STALE: '600' },
    });
    try {
      assert.equal(outcome(await scram(h, 'alice')), 'true');
      assert.equal(outcome(await scram(h, 'alice')), 'true');
      // Every user has the same credentials here; leakkeys prints them on stderr before it
      // answers, so they are masked as keys of a recent answer (alice's).
      assert.equal(outcome(await scram(h, 'leakkeys')), 'true');
      await h.waitForLog((l) => l.msg === 'script stderr');
      await h.waitForLogs((lines) => lines.filter((l) => l.msg === 'query answered').length === 3);
      assert.equal(h.records().filter((r) => r.kind === 'scram' && r.user === 'alice').length, 2, 'each scram query asked the script: nothing cached');
      const log = h.output();
      const { storedKey, serverKey } = expected('sha-256');
      for (const key of [storedKey, serverKey]) {
        for (const form of [key.toString('base64'), key.toString('hex'), key.toString('hex').toUpperCase(), key.toString('base64url')]) {
          assert.ok(
            !log.includes(form),
            `a key appears in the log as ${form}:\n${log
              .split('\n')
              .filter((line) => line.includes(form))
              .join('\n')}`,
          );
        }
      }
      assert.match(log, /keys \[redacted\] \[redacted\]/);
      const answered = h.logs().filter((l) => l.msg === 'query answered' && l.kind === 'scram');
      assert.deepEqual(
        answered.map((l) => [l.user, l.outcome]),
        [
          ['alice', true],
          ['alice', true],
          ['leakkeys', true],
        ],
      );
    } finally {
      await h.cleanup();
    }
  });
});
