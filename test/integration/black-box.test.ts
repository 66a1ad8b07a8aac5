// The built component (`node dist/main.js`) against the fake XEP-0114 server, asked what a hostile
// server or a hostile script would ask: SCRAM answers that are almost right, keys on stderr,
// forget under every requester, tagged answers for ids nobody waits for, and requests with
// control characters, colons, prefixes, CDATA, wrong iq types or too many bytes. Black-box only:
// what goes in on the stream and the script's stdin, what comes out as replies, log lines and
// metrics, so these hold whatever the code inside looks like.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { nextId, withTimeout } from '../support/fake-server.js';
import { freePorts } from '../../support/ports.js';
import { errorOf, MAIN, resultOf, ROOT, startHarness, waitForRecord, type Harness, type HarnessOptions } from './harness.js';
import { endStdin } from '../support/child-stdin.js';

const SCRIPTED = path.join(ROOT, 'test/fixtures/scripts/scripted.mjs');
const NS = 'urn:x-extauth:0';
const STRAY_WARNING = 'script answered a request id that is not in flight; answer dropped';

const DIGESTS = { 'sha-1': 'sha1', 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
type Hash = keyof typeof DIGESTS;

interface Credentials {
  iterations: number;
  salt: string;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** RFC 5802 credentials of `password`, as a SCRAM store would keep them. */
function credentials(password: string, hash: Hash = 'sha-256', iterations = 4096, salt = Buffer.from('review-salt-16by')): Credentials {
  const digest = DIGESTS[hash];
  const salted = pbkdf2Sync(password, salt, Math.min(iterations, 4096), createHash(digest).digest().length, digest);
  const storedKey = createHash(digest).update(createHmac(digest, salted).update('Client Key').digest()).digest();
  const serverKey = createHmac(digest, salted).update('Server Key').digest();
  return { iterations, salt: salt.toString('base64'), storedKey, serverKey };
}

/** `1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`, with the parts given replacing the real ones. */
function answer(c: Credentials, parts: Partial<Record<'iterations' | 'salt' | 'storedKey' | 'serverKey', string>> = {}): string {
  return `1:${parts.iterations ?? c.iterations}:${parts.salt ?? c.salt}:${parts.storedKey ?? c.storedKey.toString('base64')}:${parts.serverKey ?? c.serverKey.toString('base64')}`;
}

/** Every spelling of a key a log could carry it in. */
function keyForms(key: Buffer): string[] {
  return [key.toString('base64'), key.toString('base64').replace(/=+$/, ''), key.toString('base64url'), key.toString('hex'), key.toString('hex').toUpperCase()];
}

function assertNotInLog(h: Harness, secrets: string[], what: string): void {
  const log = h.output();
  for (const secret of secrets) {
    const lines = log.split('\n').filter((line) => line.includes(secret));
    assert.deepEqual(lines, [], `${what} (${secret}) appears in the log`);
  }
}

type Step = { stderr?: string; stdout?: string[]; stdoutAfterMs?: number; exit?: number } | { calls: Step[] };

function scripted(protocol: 'generic' | 'tagged', plan: Record<string, Step>, options: HarnessOptions = {}): Promise<Harness> {
  return startHarness({
    ...options,
    command: (record) => `${SCRIPTED} --protocol ${protocol} --record ${record}`,
    env: { EXTERNAL_AUTH_PROTOCOL: protocol, SCRIPTED_PLAN: JSON.stringify(plan), ...options.env },
  });
}

const outcome = (reply: Element) => {
  const error = errorOf(reply);
  return error.condition === undefined ? resultOf(reply) : `${error.type}/${error.condition}`;
};

/** Sends a raw stanza; `ID` in it is replaced by a fresh id. */
function send(h: Harness, stanza: string): Promise<Element> {
  const id = nextId();
  return h.server.request(stanza.replaceAll('ID', id), id);
}

const iq = (type: string, child: string, from = 'example.com') => `<iq type='${type}' id='ID' from='${from}' to='auth.example.com'>${child}</iq>`;

async function metricsOf(port: number | undefined): Promise<string> {
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

function sample(metrics: string, name: string, labels = ''): number | undefined {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('scram answers, read strictly', () => {
  for (const protocol of ['generic', 'tagged'] as const) {
    test(`${protocol}: the reply carries exactly the credentials; every malformed answer is wait/internal-server-error, never false`, async () => {
      const c = credentials('pencil');
      const t = (line: string) => (protocol === 'tagged' ? `{id}:${line}` : line);
      const c1 = credentials('pencil', 'sha-1');
      const c512 = credentials('pencil', 'sha-512');
      const urlSalt = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
      const good: Record<string, Step> = {
        iter1: { stdout: [t(answer(c, { iterations: '1' }))] },
        itermax: { stdout: [t(answer(c, { iterations: '10000000' }))] },
        sha1: { stdout: [t(answer(c1))] },
        sha512: { stdout: [t(answer(c512))] },
        trailingcr: { stdout: [`${t(answer(c))}\r`] },
        refused: { stdout: [t('0')] },
      };
      const bad: Record<string, Step> = {
        iter0: { stdout: [t(answer(c, { iterations: '0' }))] },
        iterover: { stdout: [t(answer(c, { iterations: '10000001' }))] },
        iterneg: { stdout: [t(answer(c, { iterations: '-4096' }))] },
        iterword: { stdout: [t(answer(c, { iterations: 'many' }))] },
        iterfrac: { stdout: [t(answer(c, { iterations: '4096.5' }))] },
        sha1keys: { stdout: [t(answer(c1))] }, // asked for sha-256, got 20-byte keys
        sha512keys: { stdout: [t(answer(c512))] }, // asked for sha-256, got 64-byte keys
        shortserver: { stdout: [t(answer(c, { serverKey: c.serverKey.subarray(1).toString('base64') }))] },
        longstored: { stdout: [t(answer(c, { storedKey: Buffer.concat([c.storedKey, Buffer.from([0])]).toString('base64') }))] },
        nopadkey: { stdout: [t(answer(c, { storedKey: c.storedKey.toString('base64').replace(/=+$/, '') }))] },
        nopadsalt: { stdout: [t(answer(c, { salt: c.salt.replace(/=+$/, '') }))] },
        urlsafesalt: { stdout: [t(answer(c, { salt: urlSalt.toString('base64url') }))] },
        hexkeys: { stdout: [t(answer(c, { storedKey: c.storedKey.toString('hex'), serverKey: c.serverKey.toString('hex') }))] },
        spacedkey: { stdout: [t(answer(c, { storedKey: ` ${c.storedKey.toString('base64')}` }))] },
        fivefields: { stdout: [t(`${answer(c)}:extra`)] },
        threefields: { stdout: [t(`1:4096:${c.salt}:${c.storedKey.toString('base64')}`)] },
        bare1: { stdout: [t('1')] },
        truth: { stdout: [t('true')] },
        emptyfields: { stdout: [t('1::::')] },
        outage: { stdout: [t('E')] }, // tagged: my backend failed; generic: no answer at all
      };
      const [port] = await freePorts(1);
      const h = await scripted(protocol, { ...good, ...bad }, { env: { HTTP_LISTEN: `127.0.0.1:${port}`, LOG_LEVEL: 'trace' } });
      try {
        const ask = (user: string, hash: Hash = 'sha-256') => h.ask({ kind: 'scram', user, hash });
        const reply = await ask('iter1');
        assert.deepEqual(
          { type: reply.attrs.type, to: reply.attrs.to, from: reply.attrs.from, children: reply.getChildElements().length },
          { type: 'result', to: 'example.com', from: 'auth.example.com', children: 1 },
        );
        assert.deepEqual(reply.getChild('scram', NS)?.attrs, {
          xmlns: NS,
          result: 'true',
          iterations: '1',
          salt: c.salt,
          'stored-key': c.storedKey.toString('base64'),
          'server-key': c.serverKey.toString('base64'),
        });
        assert.equal(reply.getChild('scram', NS)?.attrs.iterations, '1');
        assert.equal((await ask('itermax')).getChild('scram', NS)?.attrs.iterations, '10000000', 'ten million iterations is still allowed');
        assert.equal((await ask('sha1', 'sha-1')).getChild('scram', NS)?.attrs['stored-key'], c1.storedKey.toString('base64'));
        assert.equal((await ask('sha512', 'sha-512')).getChild('scram', NS)?.attrs['server-key'], c512.serverKey.toString('base64'));
        assert.equal(outcome(await ask('trailingcr')), 'true', 'a trailing CR is tolerated');
        const refused = await ask('refused');
        assert.deepEqual(refused.getChild('scram', NS)?.attrs, { xmlns: NS, result: 'false' }, 'a refusal carries nothing else');

        for (const user of Object.keys(bad)) {
          const got = await ask(user);
          assert.equal(outcome(got), 'wait/internal-server-error', `${user}: ${got.toString()}`);
          assert.equal(got.getChild('scram', NS), undefined, `${user}: an error carries no credentials`);
          // A good answer in between, so that the restarts after bad answers never pile up into a backoff.
          assert.equal(outcome(await ask('iter1')), 'true', `after ${user}`);
        }
        assert.deepEqual(
          h
            .records()
            .filter((r) => r.user === 'sha1' || r.user === 'sha512')
            .map((r) => r.raw),
          ['scram:sha1:example.com:sha-1', 'scram:sha512:example.com:sha-512'],
        );
        assert.equal(outcome(await ask('itermax')), 'true', 'still serving after all those bad answers');

        const metrics = await metricsOf(port);
        assert.equal(sample(metrics, 'extauth_requests_total', '{kind="scram",outcome="true"}'), 6 + Object.keys(bad).length);
        assert.equal(sample(metrics, 'extauth_requests_total', '{kind="scram",outcome="false"}'), 1);
        assert.equal(sample(metrics, 'extauth_requests_total', '{kind="scram",outcome="internal-server-error"}'), Object.keys(bad).length);
        assert.match(metrics, /^extauth_request_duration_seconds_bucket\{[^}]*kind="scram"[^}]*\} \d+$/m);
        for (const user of Object.keys({ ...good, ...bad })) assert.ok(!metrics.includes(`"${user}"`), `the user ${user} is in a metric label`);
        assertNotInLog(h, [...keyForms(c.storedKey), ...keyForms(c.serverKey), ...keyForms(c512.storedKey), ...keyForms(c1.serverKey)], 'a key');
      } finally {
        await h.cleanup();
      }
    });
  }

  test('the query itself: wrong iq type, no hash, an unknown hash, a colon are bad requests; a prefix is the same element; server defaults to the requester', async () => {
    const c = credentials('pencil');
    const h = await scripted('generic', { alice: { stdout: [answer(c)] } }, { env: { EXTERNAL_AUTH_ALLOW: 'example.com,other.example' } });
    try {
      for (const child of [
        "<scram xmlns='urn:x-extauth:0' user='alice' hash='sha-256'/>", // in a set
      ])
        assert.equal(outcome(await send(h, iq('set', child))), 'modify/bad-request');
      for (const child of [
        "<scram xmlns='urn:x-extauth:0' user='alice'/>",
        "<scram xmlns='urn:x-extauth:0' user='alice' hash=''/>",
        "<scram xmlns='urn:x-extauth:0' user='alice' hash='sha-256:x'/>",
        "<scram xmlns='urn:x-extauth:0' user='alice' hash='sha-256&#10;auth:root:x:y'/>",
        "<scram xmlns='urn:x-extauth:0' user='al:ice' hash='sha-256'/>",
        "<scram xmlns='urn:x-extauth:0' user='alice' server='a:b' hash='sha-256'/>",
        "<scram xmlns='urn:x-extauth:0' user='' hash='sha-256'/>",
        "<scram xmlns='urn:x-extauth:0' hash='sha-256'/>",
      ])
        assert.equal(outcome(await send(h, iq('get', child))), 'modify/bad-request', child);
      assert.equal(h.records().length, 0, 'the script was asked nothing');

      const prefixed = await send(h, iq('get', "<s:scram xmlns:s='urn:x-extauth:0' user='alice' hash='sha-256'/>", 'other.example'));
      assert.equal(prefixed.getChild('scram', NS)?.attrs['stored-key'], c.storedKey.toString('base64'));
      assert.deepEqual(
        h.records().map((r) => r.raw),
        ['scram:alice:other.example:sha-256'],
      );
    } finally {
      await h.cleanup();
    }
  });

  test('ejabberd script protocol: cancel/feature-not-implemented, the script never asked, counted under its condition', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({
      env: { EXTERNAL_AUTH_PROTOCOL: 'ejabberd', HTTP_LISTEN: `127.0.0.1:${port}` },
      scriptArgs: ['--protocol', 'ejabberd'],
    });
    try {
      for (const hash of ['sha-1', 'sha-256', 'sha-512'])
        assert.equal(outcome(await h.ask({ kind: 'scram', user: 'alice', hash })), 'cancel/feature-not-implemented');
      assert.equal(outcome(await send(h, iq('get', "<x:scram xmlns:x='urn:x-extauth:0' user='bob' hash='sha-256'/>"))), 'cancel/feature-not-implemented');
      assert.equal(outcome(await h.ask({ kind: 'isuser', user: 'carol' })), 'true');
      assert.deepEqual(
        h.records().map((r) => r.raw),
        ['isuser:carol:example.com'],
        'only the isuser request reached the script',
      );
      assert.equal(sample(await metricsOf(port), 'extauth_requests_total', '{kind="scram",outcome="feature-not-implemented"}'), 4);
    } finally {
      await h.cleanup();
    }
  });
});

describe('scram keys are secrets', () => {
  for (const protocol of ['generic', 'tagged'] as const) {
    test(`${protocol}: keys the script prints on stderr before its very first answer never reach the log, at trace level`, async () => {
      const c = credentials('first-answer-pw');
      const t = (line: string) => (protocol === 'tagged' ? `{id}:${line}` : line);
      const h = await scripted(
        protocol,
        {
          // A script that logs what it fetched, then answers: the usual order.
          alice: { stderr: `fetched alice: stored=${c.storedKey.toString('base64')} server=${c.serverKey.toString('hex')}\n`, stdout: [t(answer(c))] },
        },
        { env: { LOG_LEVEL: 'trace' } },
      );
      try {
        assert.equal(outcome(await h.ask({ kind: 'scram', user: 'alice', hash: 'sha-256' })), 'true');
        await h.waitForLog((l) => l.msg === 'script stderr');
        await h.waitForLog((l) => l.msg === 'query answered');
        assertNotInLog(h, [...keyForms(c.storedKey), ...keyForms(c.serverKey)], 'a key printed on stderr before the answer');
      } finally {
        await h.cleanup();
      }
    });
  }

  test('tagged: keys in a malformed answer, in an answer for an id nobody asked, or printed by a script that then never answers, never reach the log', async () => {
    const bad = credentials('malformed-pw');
    const stray = credentials('stray-pw');
    const hung = credentials('hung-pw');
    const h = await scripted(
      'tagged',
      {
        malformed: { stdout: [`{id}:${answer(bad)}:extra`] },
        stray: { stdout: [`zz9:${answer(stray)}`, '{id}:0'] },
        // Logs what it fetched, then never answers.
        hung: { stderr: `fetched hung: ${hung.storedKey.toString('base64')} ${hung.serverKey.toString('hex')}\n` },
      },
      { env: { LOG_LEVEL: 'trace' } },
    );
    try {
      assert.equal(outcome(await h.ask({ kind: 'scram', user: 'malformed', hash: 'sha-256' })), 'wait/internal-server-error');
      assert.equal(outcome(await h.ask({ kind: 'scram', user: 'stray', hash: 'sha-256' })), 'false');
      const warned = await h.waitForLog((l) => l.msg === STRAY_WARNING);
      assert.equal(warned.answerId, 'zz9');
      assert.equal(outcome(await h.ask({ kind: 'scram', user: 'hung', hash: 'sha-256' })), 'wait/remote-server-timeout');
      await h.waitForLog((l) => typeof l.stderr === 'string' && l.stderr.startsWith('fetched hung'));
      const keys = [bad, stray, hung].flatMap((c) => [...keyForms(c.storedKey), ...keyForms(c.serverKey)]);
      assertNotInLog(h, keys, 'a key');
    } finally {
      await h.cleanup();
    }
  });

  test('never cached: with a TTL and a stale window, every scram query asks the script, and an outage is never answered from an earlier one', async () => {
    const c = credentials('pencil');
    const h = await scripted(
      'generic',
      { alice: { calls: [{ stdout: [answer(c)] }, { stdout: [answer(c)] }, { exit: 3 }, { stdout: ['0'] }] } },
      { env: { EXTERNAL_AUTH_CACHE_TTL: '600', EXTERNAL_AUTH_CACHE_STALE: '600' } },
    );
    try {
      const ask = () => h.ask({ kind: 'scram', user: 'alice', hash: 'sha-256' });
      assert.equal(outcome(await ask()), 'true');
      assert.equal(outcome(await ask()), 'true');
      assert.equal(h.records().length, 2, 'the second query asked the script too');
      assert.equal(outcome(await ask()), 'wait/internal-server-error', 'a crash is an outage, not the credentials from before');
    } finally {
      await h.cleanup();
    }
  });
});

describe("passwords on the script's stderr", () => {
  test('masked also as mojibake (its UTF-8 bytes read as Latin-1), the way a script with the wrong locale prints it', async () => {
    const password = 'good-Pä€ss';
    const mojibake = Buffer.from(password, 'utf8').toString('latin1');
    const h = await scripted('generic', { alice: { stderr: `checking ${mojibake} for alice\n`, stdout: ['1'] } });
    try {
      assert.equal(outcome(await h.ask({ user: 'alice', password })), 'true');
      const line = await h.waitForLog((l) => l.msg === 'script stderr');
      assert.equal(line.stderr, 'checking [redacted] for alice');
    } finally {
      await h.cleanup();
    }
  });
});

describe('forget', () => {
  const forget = (h: Harness, attrs: string, from = 'example.com', type = 'set') => send(h, iq(type, `<forget xmlns='urn:x-extauth:0' ${attrs}/>`, from));

  test('drops that account under every requester (auth and isuser, fresh and stale), keeps the same user on another server, and never asks the script', async () => {
    const [port] = await freePorts(1);
    const h = await scripted(
      'generic',
      // carol's script falls over from her second request on: only a kept acceptance could answer.
      { carol: { calls: [{ stdout: ['1'] }, { exit: 3 }] } },
      {
        env: {
          EXTERNAL_AUTH_CACHE_TTL: '600',
          EXTERNAL_AUTH_CACHE_STALE: '600',
          EXTERNAL_AUTH_ALLOW: 'example.com,other.example',
          HTTP_LISTEN: `127.0.0.1:${port}`,
        },
      },
    );
    try {
      const asked = () => h.records().length;
      const warm = async () => {
        for (const from of ['example.com', 'other.example']) {
          assert.equal(outcome(await h.ask({ from, user: 'alice', server: 'example.com', password: 'good-1' })), 'true');
          assert.equal(outcome(await h.ask({ from, kind: 'isuser', user: 'alice', server: 'example.com' })), 'true');
          assert.equal(outcome(await h.ask({ from, user: 'alice', server: 'elsewhere.org', password: 'good-1' })), 'true');
        }
      };
      await warm();
      const first = asked();
      assert.equal(first, 6);
      await warm();
      assert.equal(asked(), first, 'all cached');

      const reply = await forget(h, "user='alice' server='example.com'", 'other.example');
      assert.deepEqual(
        { type: reply.attrs.type, to: reply.attrs.to, from: reply.attrs.from, children: reply.children.length },
        { type: 'result', to: 'other.example', from: 'auth.example.com', children: 0 },
      );
      await warm();
      assert.deepEqual(
        h
          .records()
          .slice(first)
          .map((r) => `${r.kind}:${r.server}`),
        ['auth:example.com', 'isuser:example.com', 'auth:example.com', 'isuser:example.com'],
        'alice@example.com asked again under both requesters; alice@elsewhere.org still cached',
      );
      assert.ok(!h.records().some((r) => r.kind === 'forget'));

      assert.equal(outcome(await h.ask({ user: 'carol', password: 'good-2' })), 'true');
      assert.equal(outcome((await forget(h, "user='carol'")) as Element), undefined);
      assert.equal(
        outcome(await h.ask({ user: 'carol', password: 'good-2' })),
        'wait/internal-server-error',
        'a forgotten acceptance is not served in the stale window either',
      );
      assert.equal(sample(await metricsOf(port), 'extauth_requests_total', '{kind="forget",outcome="true"}'), 2);
    } finally {
      await h.cleanup();
    }
  });

  test('an acceptance asked before a forget and answered after it is not kept', async () => {
    const h = await scripted(
      'generic',
      // The old password is still good when first asked (slowly); the script then learns it changed.
      { alice: { calls: [{ stdoutAfterMs: 500, stdout: ['1'] }, { stdout: ['0'] }] } },
      { env: { EXTERNAL_AUTH_CACHE_TTL: '600' } },
    );
    try {
      const racing = h.ask({ user: 'alice', password: 'good-old' });
      await waitForRecord(h, (r) => r.user === 'alice');
      assert.equal((await forget(h, "user='alice'")).attrs.type, 'result');
      assert.equal(outcome(await racing), 'true');
      assert.equal(outcome(await h.ask({ user: 'alice', password: 'good-old' })), 'false', 'asked again, not answered from the cache');
      assert.equal(h.records().length, 2);
    } finally {
      await h.cleanup();
    }
  });

  test('answered while the only script process is stuck, and with the ejabberd protocol: the script is not in the path', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROTOCOL: 'ejabberd', EXTERNAL_AUTH_TIMEOUT: '30' }, scriptArgs: ['--protocol', 'ejabberd'] });
    try {
      const hungId = nextId();
      h.server.writeRaw(iq('get', "<isuser xmlns='urn:x-extauth:0' user='hang'/>").replace('ID', hungId));
      await waitForRecord(h, (r) => r.user === 'hang');
      assert.equal((await forget(h, "user='alice'")).attrs.type, 'result');
      assert.ok(!h.server.received.some((el) => el.attrs.id === hungId), 'the hung request is still waiting');
    } finally {
      await h.cleanup();
    }
  });

  test('access and validation as for every query: exact error types, counted, the script never asked', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ env: { HTTP_LISTEN: `127.0.0.1:${port}` } });
    try {
      const cases: Array<[string, string, string, string]> = [
        ["user='alice'", 'evil.example', 'set', 'auth/forbidden'],
        ["user='alice'", 'alice@example.com', 'set', 'auth/forbidden'],
        ["user='alice'", 'sub.example.com', 'set', 'auth/forbidden'],
        ["user='alice'", 'example.com', 'get', 'modify/bad-request'],
        ["user=''", 'example.com', 'set', 'modify/bad-request'],
        ["server='example.com'", 'example.com', 'set', 'modify/bad-request'],
        ["user='a:b'", 'example.com', 'set', 'modify/bad-request'],
        ["user='alice' server='x:y'", 'example.com', 'set', 'modify/bad-request'],
        ["user='alice' server=''", 'example.com', 'set', 'modify/bad-request'],
        ["user='al&#9;ice'", 'example.com', 'set', 'modify/bad-request'],
        ["user='alice' server='example.com&#x7f;'", 'example.com', 'set', 'modify/bad-request'],
      ];
      for (const [attrs, from, type, want] of cases) assert.equal(outcome(await forget(h, attrs, from, type)), want, `${attrs} from ${from} in ${type}`);
      assert.equal((await send(h, iq('set', "<f:forget xmlns:f='urn:x-extauth:0' user='alice'/>"))).attrs.type, 'result', 'a prefix is the same element');
      assert.equal(h.records().length, 0);
      const metrics = await metricsOf(port);
      assert.equal(sample(metrics, 'extauth_requests_total', '{kind="forget",outcome="forbidden"}'), 3);
      assert.equal(sample(metrics, 'extauth_requests_total', '{kind="forget",outcome="bad-request"}'), 8);
    } finally {
      await h.cleanup();
    }
  });
});

describe('tagged: answers for ids not in flight', () => {
  test('dropped, warned with the id, counted; the process is kept and what else it holds is answered right', async () => {
    const [port] = await freePorts(1);
    const h = await scripted(
      'tagged',
      {
        // Made-up ids (one of them as an outage, one as credentials), then its own answer.
        stray: { stdout: ['zzzz:1', 'abc123:E', 'q0:0', '{id}:0'] },
        // Held by the same process while the strays arrive.
        waiter: { stdoutAfterMs: 300, stdout: ['{id}:1'] },
      },
      { env: { HTTP_LISTEN: `127.0.0.1:${port}`, EXTERNAL_AUTH_TIMEOUT: '20' } },
    );
    try {
      const waiter = h.ask({ kind: 'isuser', user: 'waiter' });
      await waitForRecord(h, (r) => r.user === 'waiter');
      assert.equal(outcome(await h.ask({ user: 'stray', password: 'good' })), 'false', 'its own answer, not a stray one');
      assert.equal(outcome(await waiter), 'true', 'the other request on that process is answered, not failed');
      await h.waitForLogs((lines) => lines.filter((l) => l.msg === STRAY_WARNING).length === 3);
      const warnings = h.logs().filter((l) => l.msg === STRAY_WARNING);
      assert.deepEqual(
        warnings.map((l) => l.answerId),
        ['zzzz', 'abc123', 'q0'],
      );
      for (const w of warnings) assert.equal(w.level, 40, 'a warning');
      assert.equal(outcome(await h.ask({ user: 'dave', password: 'good' })), 'true');
      assert.equal(new Set(h.records().map((r) => r.pid)).size, 1, 'one process all along');
      const metrics = await metricsOf(port);
      assert.equal(sample(metrics, 'extauth_script_stray_answers_total'), 3);
      assert.ok(
        !/^extauth_script_restarts_total\{[^}]*\} [1-9]/m.test(metrics),
        `no restart counted:\n${metrics
          .split('\n')
          .filter((l) => l.startsWith('extauth_script_restarts_total'))
          .join('\n')}`,
      );
    } finally {
      await h.cleanup();
    }
  });

  test('a line that is no answer at all restarts the process (counted with a reason); the next request is answered by a new one', async () => {
    const [port] = await freePorts(1);
    const h = await scripted(
      'tagged',
      { noise: { stdout: ['hello from the script'] } },
      { env: { HTTP_LISTEN: `127.0.0.1:${port}`, EXTERNAL_AUTH_TIMEOUT: '3' } },
    );
    try {
      const first = await h.ask({ kind: 'removeuser', user: 'noise' });
      assert.equal(errorOf(first).type, 'wait', first.toString());
      assert.equal(outcome(await h.ask({ user: 'erin', password: 'good' })), 'true');
      const pids = h.records().map((r) => r.pid);
      assert.notEqual(pids.at(-1), pids[0], 'a new process answered');
      const metrics = await metricsOf(port);
      const restarts = metrics.split('\n').filter((l) => /^extauth_script_restarts_total\{reason="[^"]+"\} [1-9]/.test(l));
      assert.ok(restarts.length > 0, 'the restart is counted with its reason');
      assert.equal(sample(metrics, 'extauth_script_stray_answers_total'), 0, 'no answer, so no stray answer either');
    } finally {
      await h.cleanup();
    }
  });
});

describe('hostile requests', () => {
  // In every password below, so that a reply or a log line carrying it is found.
  const SECRET = 'Zx9-secret';

  test('control characters, colons, empty or missing users, wrong iq types, two children: exact errors, no echo, nothing reaches the script', async () => {
    const h = await startHarness({ env: { LOG_LEVEL: 'trace' } });
    try {
      const pw = `good${SECRET}`;
      const kinds = [
        ['auth', 'get', pw],
        ['isuser', 'get', undefined],
        ['setpass', 'set', pw],
        ['tryregister', 'set', pw],
        ['removeuser', 'set', undefined],
      ] as const;
      const stanza = (kind: string, type: string, attrs: string, text?: string) =>
        iq(type, `<${kind} xmlns='urn:x-extauth:0' ${attrs}${text === undefined ? '/>' : `>${text}</${kind}>`}`);
      const cases: string[] = [];
      for (const [kind, type, text] of kinds) {
        const other = type === 'get' ? 'set' : 'get';
        cases.push(
          stanza(kind, other, "user='alice'", text),
          stanza(kind, type, '', text),
          stanza(kind, type, "user=''", text),
          stanza(kind, type, "user='al:ice'", text),
          stanza(kind, type, "user='alice' server='example.com:5222'", text),
          stanza(kind, type, "user='alice' server=''", text),
          stanza(kind, type, "user='al&#9;ice'", text),
          stanza(kind, type, "user='alice&#x7f;'", text),
          stanza(kind, type, "user='alice' server='example.com&#13;'", text),
          stanza(kind, type, "user='alice&#10;auth:root:example.com:good'", text),
          // A namespaced attribute is not the user attribute.
          stanza(kind, type, "xmlns:x='urn:x-extauth:0' x:user='alice'", text),
        );
        if (text !== undefined) {
          cases.push(
            stanza(kind, type, "user='alice'", `${text}&#10;auth:root:example.com:good`),
            stanza(kind, type, "user='alice'", `${text}&#13;`),
            stanza(kind, type, "user='alice'", `${text}&#x7f;`),
            stanza(kind, type, "user='alice'", `<![CDATA[${text}\t]]>`),
          );
        }
        // Markup inside the query: its text would be the pieces around it glued together.
        cases.push(stanza(kind, type, "user='alice'", `${text ?? ''}<b/>`), stanza(kind, type, "user='alice'", `go<b>${text ?? ''}</b>od`));
        // Two children: one of ours and a stranger, or two of ours.
        cases.push(
          iq(type, `<${kind} xmlns='urn:x-extauth:0' user='alice'>${text ?? ''}</${kind}><x xmlns='urn:other'/>`),
          iq(type, `<${kind} xmlns='urn:x-extauth:0' user='alice'>${text ?? ''}</${kind}><${kind} xmlns='urn:x-extauth:0' user='bob'/>`),
        );
      }
      for (const c of cases) {
        const reply = await send(h, c).catch((error: Error) => assert.fail(`${error.message}: ${c}`));
        assert.equal(outcome(reply), 'modify/bad-request', c);
        assert.ok(errorOf(reply).text, `a reason for people: ${c}`);
        assert.ok(!reply.toString().includes(SECRET), `the password is echoed: ${reply.toString()}`);
      }
      assert.equal(h.records().length, 0, 'nothing reached the script');
      assertNotInLog(h, [SECRET], 'the password');
    } finally {
      await h.cleanup();
    }
  });

  test('a character reference XML does not allow (U+001F, U+001B) is no request at all: a not-well-formed stream error, a reconnect, nothing reaches the script', async () => {
    const h = await startHarness();
    try {
      let accepted = 1;
      for (const child of [
        `<auth xmlns='urn:x-extauth:0' user='alice&#x1f;'>good${SECRET}</auth>`,
        `<auth xmlns='urn:x-extauth:0' user='alice'>&#27;[2Jgood${SECRET}</auth>`,
      ]) {
        h.server.writeRaw(iq('get', child).replace('ID', nextId()));
        await h.server.waitAccepted(++accepted);
        assert.match(h.server.rawReceived.join(''), /<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
        assert.equal(outcome(await h.ask({ user: 'alice', password: 'good' })), 'true', 'serving again after the reconnect');
      }
      assert.deepEqual(
        h.records().map((r) => r.password),
        ['good', 'good'],
      );
      for (const raw of h.server.rawReceived) assert.ok(!raw.includes(SECRET));
    } finally {
      await h.cleanup();
    }
  });

  test('iq result and error are never answered; a prefix is the same element; CDATA is text; the reply never echoes the password', async () => {
    const h = await startHarness({ env: { LOG_LEVEL: 'trace' } });
    try {
      const ignored = [
        iq('result', `<auth xmlns='urn:x-extauth:0' user='alice'>good${SECRET}</auth>`),
        iq('error', `<auth xmlns='urn:x-extauth:0' user='alice'>good${SECRET}</auth>`),
      ];
      const ids = ignored.map(() => nextId());
      for (const [i, stanza] of ignored.entries()) h.server.writeRaw(stanza.replace('ID', ids[i]!));
      // Stanzas are handled in order: once the ping is answered, any reply to those would be here.
      assert.equal((await send(h, iq('get', "<ping xmlns='urn:xmpp:ping'/>"))).attrs.type, 'result');
      assert.deepEqual(
        h.server.received.filter((el) => ids.includes(el.attrs.id ?? '')),
        [],
      );

      const prefixed = await send(h, iq('get', `<x:auth xmlns:x='urn:x-extauth:0' user='alice'>good${SECRET}</x:auth>`));
      assert.equal(outcome(prefixed), 'true');
      assert.equal(prefixed.getChild('auth', NS)?.attrs.result, 'true', 'the reply child is in the namespace');
      const onIq = await send(h, `<iq xmlns:e='urn:x-extauth:0' type='get' id='ID' from='example.com' to='auth.example.com'><e:isuser user='bob'/></iq>`);
      assert.equal(onIq.getChild('isuser', NS)?.attrs.result, 'true');

      const texts = [
        [`<![CDATA[good<&>${SECRET}]]>`, `good<&>${SECRET}`],
        [`good<![CDATA[ a ]]>b${SECRET}`, `good a b${SECRET}`],
        [`good&amp;&lt;&#x263A;${SECRET}`, `good&<☺${SECRET}`],
      ];
      for (const [text, password] of texts) {
        const before = h.records().length;
        assert.equal(outcome(await send(h, iq('get', `<auth xmlns='urn:x-extauth:0' user='carol'>${text}</auth>`))), 'true', text);
        assert.equal(h.records()[before]?.password, password, text);
      }
      // An id that needs escaping comes back as it was sent.
      const oddId = `${nextId()}'"<&>]]>`;
      const odd = await h.server.request(
        `<iq type='get' id='${oddId.replaceAll('&', '&amp;').replaceAll("'", '&apos;').replaceAll('<', '&lt;')}' from='example.com' to='auth.example.com'><isuser xmlns='urn:x-extauth:0' user='bob'/></iq>`,
        oddId,
      );
      assert.equal(odd.getChild('isuser', NS)?.attrs.result, 'true');
      // Another namespace for our element's name is not ours.
      const foreign = await send(h, iq('get', `<auth xmlns='urn:x-extauth:1' user='alice'>good${SECRET}</auth>`));
      assert.equal(outcome(foreign), 'cancel/service-unavailable');
      assert.ok(!foreign.toString().includes(SECRET));
      for (const raw of h.server.rawReceived) assert.ok(!raw.includes(SECRET), `the password went back to the server: ${raw}`);
      assertNotInLog(h, [SECRET], 'the password');
    } finally {
      await h.cleanup();
    }
  });

  test('generic and tagged: 4000 bytes of request fields pass, one more byte (counted in UTF-8) is modify/policy-violation', async () => {
    for (const protocol of ['generic', 'tagged'] as const) {
      const h = await startHarness({ env: { EXTERNAL_AUTH_PROTOCOL: protocol }, scriptArgs: ['--protocol', protocol] });
      try {
        const head = 'auth:alice:example.com:'; // 23 bytes
        const fill = 4000 - head.length - 'good'.length; // 3973: odd, so one two-byte character pushes it over
        const fits = `good${'é'.repeat((fill - 1) / 2)}x`;
        assert.equal(Buffer.byteLength(head + fits), 4000);
        assert.equal(outcome(await h.ask({ user: 'alice', password: fits })), 'true', protocol);
        const over = `good${'é'.repeat((fill + 1) / 2)}`;
        assert.equal(Buffer.byteLength(head + over), 4001);
        assert.ok(over.length < 4000, 'fewer characters than bytes');
        const reply = await h.ask({ user: 'alice', password: over });
        assert.equal(outcome(reply), 'modify/policy-violation', protocol);
        assert.ok(!reply.toString().includes('é'.repeat(10)), 'no echo');
        assert.equal(h.records().length, 1, 'the long one never reached the script');
      } finally {
        await h.cleanup();
      }
    }
  });

  test('ejabberd: 65535 bytes pass, 65536 are modify/policy-violation', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }, scriptArgs: ['--protocol', 'ejabberd'] });
    try {
      const head = 'auth:alice:example.com:';
      const fits = `good${'y'.repeat(65535 - head.length - 4)}`;
      assert.equal(outcome(await h.ask({ user: 'alice', password: fits })), 'true');
      assert.equal(outcome(await h.ask({ user: 'alice', password: `${fits}y` })), 'modify/policy-violation');
      assert.equal(h.records().length, 1);
    } finally {
      await h.cleanup();
    }
  });
});

describe('metrics', () => {
  test('every name and label of the operations table, outcomes named by stanza error condition, no user in any label', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ env: { HTTP_LISTEN: `127.0.0.1:${port}`, EXTERNAL_AUTH_TIMEOUT: '1' } });
    try {
      await h.ask({ user: 'mallory-user', password: 'good' });
      await h.ask({ user: 'mallory-user', password: 'bad' });
      await h.ask({ user: 'mallory-user', password: 'good', from: 'evil.example' });
      await h.ask({ user: 'mallory:user', password: 'good' });
      await h.ask({ user: 'hang' });
      await h.ask({ kind: 'isuser', user: 'garbage' });
      const metrics = await metricsOf(port);
      for (const [labels, value] of [
        ['{kind="auth",outcome="true"}', 1],
        ['{kind="auth",outcome="false"}', 1],
        ['{kind="auth",outcome="forbidden"}', 1],
        ['{kind="auth",outcome="bad-request"}', 1],
        ['{kind="auth",outcome="remote-server-timeout"}', 1],
        ['{kind="isuser",outcome="internal-server-error"}', 1],
      ] as const)
        assert.equal(sample(metrics, 'extauth_requests_total', labels), value, labels);
      assert.match(metrics, /^extauth_request_duration_seconds_bucket\{[^}]*kind="auth"[^}]*\} \d+$/m);
      assert.match(metrics, /^extauth_request_duration_seconds_count\{kind="auth"\} \d+$/m);
      for (const name of ['extauth_queue_depth', 'extauth_in_flight', 'extauth_script_processes_up', 'extauth_xmpp_connected', 'extauth_xmpp_reconnects_total'])
        assert.notEqual(sample(metrics, name), undefined, `${name} is exported without labels`);
      assert.equal(sample(metrics, 'extauth_xmpp_connected'), 1);
      assert.match(metrics, /^extauth_script_restarts_total\{reason="[a-z-]+"\} [1-9]/m);
      assert.match(metrics, /^process_cpu_seconds_total /m, "Node's default process metrics");
      assert.ok(!metrics.includes('mallory'), 'a user name in a metric');
    } finally {
      await h.cleanup();
    }
  });
});

describe('check-script scram', () => {
  async function checkScript(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; out: string }> {
    // check-script gives the script the service's environment, not this one: the settings and
    // the fixture's plan go in an environment file, as the service's unit would have them.
    const dir = mkdtempSync(path.join(tmpdir(), 'check-script-env-'));
    const envFile = path.join(dir, 'env');
    const quote = (value: string) => `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    writeFileSync(
      envFile,
      Object.entries({ EXTERNAL_AUTH_TIMEOUT: '3', ...env })
        .map(([k, v]) => `${k}=${quote(v)}\n`)
        .join(''),
    );
    const child = spawn(process.execPath, [MAIN, 'check-script', '--env-file', envFile, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (out += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (out += text));
    endStdin(child.stdin, stdin);
    const [code] = (await withTimeout(once(child, 'exit'), 30_000, 'check-script did not exit')) as [number | null];
    rmSync(dir, { recursive: true, force: true });
    return { code, out };
  }

  test('a password the script prints on stderr, in the forms its logging turns it into, is masked in the diagnosis', async () => {
    const password = 'good-Pässwörd"q';
    const forms = {
      text: password,
      json: JSON.stringify(password).slice(1, -1),
      pythonRepr: "'good-P\\xe4ssw\\xf6rd\"q'",
      bytesRepr: "b'good-P\\xc3\\xa4ssw\\xc3\\xb6rd\"q'",
      base64: Buffer.from(password).toString('base64'),
      percent: encodeURIComponent(password),
    };
    const plan: Record<string, Step> = { leaky: { stderr: `${Object.values(forms).join('\n')}\n`, exit: 1 } };
    const env = { EXTERNAL_AUTH_COMMAND: `${SCRIPTED} --protocol generic`, EXTERNAL_AUTH_PROTOCOL: 'generic', SCRIPTED_PLAN: JSON.stringify(plan) };
    const run = await checkScript(['auth', 'leaky'], env, `${password}\n`);
    assert.equal(run.code, 3, run.out);
    assert.match(run.out, /last lines on stderr/);
    for (const [name, form] of Object.entries(forms)) assert.ok(!run.out.includes(form), `the password as ${name} (${form}) is printed:\n${run.out}`);
  });

  test('exit 0 for credentials, 1 for 0, 3 for a broken answer or a crash, 2 with the ejabberd protocol; the keys printed nowhere', async () => {
    const c = credentials('check-pw');
    const leak = `stored ${c.storedKey.toString('base64')} server ${c.serverKey.toString('hex')}\n`;
    const plan: Record<string, Step> = {
      ok: { stderr: leak, stdout: [answer(c)] },
      no: { stdout: ['0'] },
      broken: { stderr: leak, stdout: [answer(c, { iterations: '0' })] },
      crash: { stderr: leak, exit: 1 },
    };
    const env = { EXTERNAL_AUTH_COMMAND: `${SCRIPTED} --protocol generic`, EXTERNAL_AUTH_PROTOCOL: 'generic', SCRIPTED_PLAN: JSON.stringify(plan) };
    const runs = {
      ok: await checkScript(['scram', 'ok', 'example.com'], env),
      no: await checkScript(['scram', 'no'], env),
      broken: await checkScript(['scram', 'broken'], env),
      crash: await checkScript(['scram', 'crash'], env),
      ejabberd: await checkScript(['scram', 'ok'], { ...env, EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }),
    };
    assert.deepEqual(
      Object.fromEntries(Object.entries(runs).map(([name, run]) => [name, run.code])),
      { ok: 0, no: 1, broken: 3, crash: 3, ejabberd: 2 },
      Object.values(runs)
        .map((r) => r.out)
        .join('\n----\n'),
    );
    for (const [name, run] of Object.entries(runs)) {
      for (const form of [...keyForms(c.storedKey), ...keyForms(c.serverKey)]) assert.ok(!run.out.includes(form), `${name}: a key is printed:\n${run.out}`);
    }
  });
});
