import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { FakeXmppServer, nextId } from '../support/fake-server.js';
import { resultOf, SECRET, startHarness, type Harness } from './harness.js';

const STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams';

function streamErrorCondition(server: FakeXmppServer): string | undefined {
  const error = server.received.find((el) => el.name === 'stream:error');
  return error?.getChildElements().find((child) => child.attrs.xmlns === STREAM_ERRORS)?.name;
}

function iq(id: string, child: string): string {
  return `<iq type='get' id='${id}' from='example.com' to='auth.example.com'>${child}</iq>`;
}

describe('stream rules', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.cleanup());

  test('text after a CDATA section reaches the script: the field is never cut short', async () => {
    const id = nextId();
    const reply = await h.server.request(iq(id, `<auth xmlns='urn:x-extauth:0' user='cdata'><![CDATA[good-]]>WRONG</auth>`), id);
    assert.equal(resultOf(reply), 'true');
    const record = h.records().find((r) => r.user === 'cdata');
    assert.equal(record?.password, 'good-WRONG');
  });

  test('a prefixed element of the namespace is understood, and the reply uses the same child name', async () => {
    const id = nextId();
    const reply = await h.server.request(iq(id, `<x:auth xmlns:x='urn:x-extauth:0' user='prefixed'>good-pw</x:auth>`), id);
    assert.equal(reply.attrs.type, 'result');
    const child = reply.getChildElements()[0]!;
    assert.equal(child.name, 'auth');
    assert.equal(child.attrs.xmlns, 'urn:x-extauth:0');
    assert.equal(child.attrs.result, 'true');
  });

  test('whitespace keepalives between stanzas change nothing', async () => {
    h.server.writeRaw(' \n '.repeat(1000));
    assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
  });
});

describe('restricted XML and malformed stanzas end the stream, never a request', () => {
  for (const [what, payload, condition] of [
    ['a comment inside a field', `<auth xmlns='urn:x-extauth:0' user='comment'>good-<!-- x -->WRONG</auth>`, 'restricted-xml'],
    ['a processing instruction inside a field', `<auth xmlns='urn:x-extauth:0' user='pi'>good-<?x y?>WRONG</auth>`, 'restricted-xml'],
    ['an undefined entity', `<auth xmlns='urn:x-extauth:0' user='entity'>good-&secretword-pw;</auth>`, 'restricted-xml'],
    ['a mismatched end tag', `<auth xmlns='urn:x-extauth:0' user='mismatch'>good-secretword-pw</oops>`, 'not-well-formed'],
  ] as const) {
    test(`${what}: a ${condition} stream error, the component reconnects, the script is not asked, nothing of it is logged`, async () => {
      const h = await startHarness();
      try {
        const id = nextId();
        h.server.writeRaw(iq(id, payload));
        await h.server.waitAccepted(2);
        assert.equal(streamErrorCondition(h.server), condition);
        assert.equal(h.records().length, 0, 'the script never saw the request');
        assert.ok(!h.output().includes('secretword') && !h.output().includes('WRONG'), 'no request text in the log');
        assert.ok(h.logs().some((line) => line.msg === 'connection lost' && String(line.reason).includes(condition)));
        // And the new stream works.
        assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
      } finally {
        await h.cleanup();
      }
    });
  }
});

describe('bytes the parser refuses end the stream with the condition RFC 6120 names, and the component reconnects', () => {
  const bad = (password: Buffer) =>
    Buffer.concat([
      Buffer.from(`<iq type='get' id='bad' from='example.com' to='auth.example.com'><auth xmlns='urn:x-extauth:0' user='victim'>`),
      password,
      Buffer.from('</auth></iq>'),
    ]);
  for (const [what, bytes, condition] of [
    ['pw + FF (not UTF-8)', bad(Buffer.from([0x70, 0x77, 0xff])), 'unsupported-encoding'],
    ['pw + an overlong encoding', bad(Buffer.from([0x70, 0x77, 0xc0, 0xaf])), 'unsupported-encoding'],
    [
      'a second stream header',
      Buffer.from(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='again'>`),
      'unsupported-stanza-type',
    ],
    ['elements nested 100 deep', Buffer.from(`<iq type='get' id='deep' from='example.com' to='auth.example.com'>${'<a>'.repeat(100)}`), 'policy-violation'],
    [
      'a stanza over 1 MiB in one write',
      Buffer.from(`<iq type='get' id='big' from='example.com' to='auth.example.com'>${'x'.repeat(1024 * 1024)}</iq>`),
      'policy-violation',
    ],
  ] as const) {
    test(`${what}: ${condition}`, async () => {
      const h = await startHarness();
      try {
        h.server.writeRaw(bytes);
        await h.server.waitAccepted(2);
        assert.equal(streamErrorCondition(h.server), condition);
        assert.ok(!h.records().some((r) => r.user === 'victim'), 'the request was never acted on, with U+FFFD or otherwise');
        assert.ok(h.logs().some((line) => line.msg === 'connection lost' && String(line.reason).includes(condition)));
        assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
      } finally {
        await h.cleanup();
      }
    });
  }

  test('a 60,000-attribute stanza from a requester that is not allowed is refused, and the login behind it answered', async () => {
    const h = await startHarness();
    try {
      const attributes = Array.from({ length: 60_000 }, (_, i) => ` a${i}='x'`).join('');
      const refused = h.server.request(
        `<iq type='get' id='hostile' from='evil.example' to='auth.example.com'${attributes}><auth xmlns='urn:x-extauth:0' user='alice'>good-pw</auth></iq>`,
        'hostile',
      );
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
      const reply = await refused;
      assert.equal(reply.attrs.type, 'error');
      assert.equal(reply.getChild('error')?.getChildElements()[0]?.name, 'forbidden');
      assert.equal(h.server.accepted, 1, 'the stream was kept');
    } finally {
      await h.cleanup();
    }
  });
});

describe('nothing is acted on before the handshake is accepted', () => {
  test('a setpass sent before <handshake/> never reaches the script; the stream is refused and retried', async () => {
    const server = new FakeXmppServer(SECRET);
    server.beforeHandshakeReply = `<iq type='set' id='early' from='example.com' to='auth.example.com'><setpass xmlns='urn:x-extauth:0' user='victim'>owned</setpass></iq>`;
    await server.listen();
    const h = await startHarness({ server, waitOnline: false });
    try {
      await server.waitAccepted(2);
      const line = await h.waitForLog((l) => l.msg === 'connection attempt failed');
      assert.match(String(line.reason), /before accepting the handshake/);
      server.beforeHandshakeReply = null;
      await server.waitAccepted(3);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
      assert.ok(!h.records().some((r) => r.user === 'victim'), 'the early setpass was never executed');
      assert.ok(!server.received.some((el: Element) => el.attrs.id === 'early'), 'and never answered');
    } finally {
      await h.cleanup();
    }
  });
});
