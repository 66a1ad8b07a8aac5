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
