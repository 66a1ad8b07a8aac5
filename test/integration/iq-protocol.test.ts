import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { nextId } from '../support/fake-server.js';
import { errorOf, resultOf, startHarness, type Harness } from './harness.js';

describe('IQ protocol (urn:x-extauth:0)', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { EXTERNAL_AUTH_ALLOW: 'example.com, admin@other.org' } });
  });
  after(() => h.cleanup());

  test('auth answers true for the right password and false for a wrong one', async () => {
    const right = await h.ask({ user: 'alice', password: 'good-pw' });
    assert.equal(right.attrs.type, 'result');
    assert.equal(right.attrs.to, 'example.com');
    assert.equal(right.attrs.from, 'auth.example.com');
    const child = right.getChildElements()[0]!;
    assert.equal(child.name, 'auth');
    assert.equal(child.attrs.xmlns, 'urn:x-extauth:0');
    assert.equal(child.attrs.result, 'true');
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad-pw' })), 'false');
  });

  test('each kind reaches the script as its line and answers with the same child name', async () => {
    const before = h.records().length;
    const cases = [
      { kind: 'isuser', user: 'bob' },
      { kind: 'isuser', user: 'nobody-here' },
      { kind: 'setpass', user: 'bob', password: 'new:pass' },
      { kind: 'tryregister', user: 'carol', password: 'p' },
      { kind: 'removeuser', user: 'carol' },
    ];
    const replies = [];
    for (const c of cases) replies.push(await h.ask(c));
    assert.deepEqual(
      replies.map((r) => [r.getChildElements()[0]!.name, resultOf(r)]),
      [
        ['isuser', 'true'],
        ['isuser', 'false'],
        ['setpass', 'true'],
        ['tryregister', 'true'],
        ['removeuser', 'true'],
      ],
    );
    assert.deepEqual(
      h
        .records()
        .slice(before)
        .map((r) => r.raw),
      [
        'isuser:bob:example.com',
        'isuser:nobody-here:example.com',
        'setpass:bob:example.com:new:pass',
        'tryregister:carol:example.com:p',
        'removeuser:carol:example.com',
      ],
    );
  });

  test('server defaults to the requester domain; an explicit server is passed through', async () => {
    const before = h.records().length;
    await h.ask({ kind: 'isuser', user: 'dan', from: 'EXAMPLE.com/res' });
    await h.ask({ kind: 'isuser', user: 'dan', server: 'conference.example.net' });
    assert.deepEqual(
      h
        .records()
        .slice(before)
        .map((r) => r.server),
      ['example.com', 'conference.example.net'],
    );
  });

  test('the password is taken exactly: spaces, colons, quotes, UTF-8', async () => {
    const password = ' good: "it\'s" <&> ünïcødé 😀 ';
    const before = h.records().length;
    assert.equal(resultOf(await h.ask({ user: 'eve', password })), 'false'); // leading space: not "good..."
    assert.equal(h.records()[before]!.password, password);
  });

  test('requesters outside EXTERNAL_AUTH_ALLOW get auth/forbidden and reach no script', async () => {
    const before = h.records().length;
    for (const from of ['evil.com', 'alice@example.com', 'alice@example.com/x', 'sub.example.com', 'other.org', 'ADMIN@other.org']) {
      const reply = await h.ask({ user: 'alice', password: 'good', from });
      assert.deepEqual(errorOf(reply).condition, 'forbidden', from);
      assert.equal(errorOf(reply).type, 'auth');
    }
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good', from: 'example.com/x' })), 'true');
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good', from: 'admin@OTHER.org/r' })), 'true');
    assert.equal(h.records().length, before + 2);
  });

  test('malformed queries get modify/bad-request and never reach the script', async () => {
    const before = h.records().length;
    const bad = [
      { user: undefined, password: 'good' },
      { user: '', password: 'good' },
      { user: 'al:ice', password: 'good' },
      { user: 'alice', server: 'ex:ample.com', password: 'good' },
      { user: 'alice', server: '', password: 'good' },
      { user: 'alice\nauth:root:example.com:x', password: 'good' },
      { user: 'alice', password: 'good\nauth:root:example.com:good' },
      { user: 'alice', password: 'good\rx' },
      { user: 'alice', password: 'good\u007f' },
      { user: 'alice', password: 'good', type: 'set' },
      { kind: 'setpass', user: 'alice', password: 'good', type: 'get' },
    ];
    for (const q of bad) {
      const reply = await h.ask(q as never);
      assert.equal(reply.attrs.type, 'error', JSON.stringify(q));
      assert.deepEqual([errorOf(reply).type, errorOf(reply).condition], ['modify', 'bad-request'], JSON.stringify(q));
      assert.ok(errorOf(reply).text, 'a human-readable reason is given');
    }
    // Character references decode to control characters too.
    const id = nextId();
    const reply = await h.server.request(
      `<iq type='get' id='${id}' from='example.com' to='auth.example.com'><auth xmlns='urn:x-extauth:0' user='alice'>good&#10;isuser:x:y</auth></iq>`,
      id,
    );
    assert.equal(errorOf(reply).condition, 'bad-request');
    assert.equal(h.records().length, before, 'nothing reached the script');
  });

  test('a request longer than the protocol allows gets modify/policy-violation', async () => {
    const before = h.records().length;
    const reply = await h.ask({ user: 'alice', password: `good${'x'.repeat(4000)}` });
    assert.deepEqual([errorOf(reply).type, errorOf(reply).condition], ['modify', 'policy-violation']);
    assert.equal(h.records().length, before);
    // Just under the limit still works: "auth:alice:example.com:" is 23 bytes.
    assert.equal(resultOf(await h.ask({ user: 'alice', password: `good${'x'.repeat(4000 - 23 - 4)}` })), 'true');
  });

  test('an unknown query in the namespace gets feature-not-implemented; other namespaces service-unavailable, neither echoing the request', async () => {
    let id = nextId();
    let reply = await h.server.request(
      `<iq type='get' id='${id}' from='example.com' to='auth.example.com'><frobnicate xmlns='urn:x-extauth:0' user='a'>good-secret-1</frobnicate></iq>`,
      id,
    );
    assert.equal(errorOf(reply).condition, 'feature-not-implemented');
    assert.ok(!reply.toString().includes('good-secret-1'));
    id = nextId();
    reply = await h.server.request(
      `<iq type='set' id='${id}' from='example.com' to='auth.example.com'><query xmlns='jabber:iq:register'><password>good-secret-2</password></query></iq>`,
      id,
    );
    assert.equal(errorOf(reply).condition, 'service-unavailable');
    assert.ok(!reply.toString().includes('good-secret-2'));
  });

  test('two children in one iq are a bad request', async () => {
    const id = nextId();
    const reply = await h.server.request(
      `<iq type='get' id='${id}' from='example.com' to='auth.example.com'><isuser xmlns='urn:x-extauth:0' user='a'/><isuser xmlns='urn:x-extauth:0' user='b'/></iq>`,
      id,
    );
    assert.equal(errorOf(reply).condition, 'bad-request');
  });

  test('answers disco#info with the namespace and XEP-0199 ping, from anyone', async () => {
    let id = nextId();
    const info = await h.server.request(
      `<iq type='get' id='${id}' from='someone@elsewhere.net/r' to='auth.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
      id,
    );
    assert.equal(info.attrs.type, 'result');
    const features = info
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attrs.var);
    assert.ok(features.includes('urn:x-extauth:0'));
    assert.ok(features.includes('urn:xmpp:ping'));
    id = nextId();
    const pong = await h.server.request(`<iq type='get' id='${id}' from='example.com' to='auth.example.com'><ping xmlns='urn:xmpp:ping'/></iq>`, id);
    assert.equal(pong.attrs.type, 'result');
  });
});
