import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Element } from '@xmpp/xml';
import { Failure } from '../../src/core/failure.js';
import { badRequest, forbidden, stanzaErrorFor, type StanzaError } from '../../src/xmpp/stanza-error.js';
import { NS_DISCO_INFO, NS_EXTAUTH, NS_PING, NS_STANZAS } from '../../src/xmpp/namespaces.js';
import { authResultReply, discoInfoReply, emptyResultReply, errorReply, type ReplyAddress } from '../../src/xmpp/replies.js';
import { parseXml } from './helpers.js';

const ADDRESS: ReplyAddress = { id: 'a1', to: 'example.com', from: 'auth.example.com' };
const NASTY: ReplyAddress = { id: `q'"&<>]]>`, to: 'a&b\'c@example.com/r"es<>', from: 'auth.example.com' };

function assertAddress(iq: Element, address: ReplyAddress): void {
  assert.equal(iq.attrs.id, address.id);
  assert.equal(iq.attrs.to, address.to);
  assert.equal(iq.attrs.from, address.from);
}

describe('authResultReply', () => {
  test("matches the README's example exactly", () => {
    assert.equal(
      authResultReply(ADDRESS, 'auth', true),
      "<iq type='result' id='a1' to='example.com' from='auth.example.com'><auth xmlns='urn:x-extauth:0' result='true'/></iq>",
    );
  });

  test('says false for a false answer', () => {
    assert.equal(
      authResultReply(ADDRESS, 'isuser', false),
      "<iq type='result' id='a1' to='example.com' from='auth.example.com'><isuser xmlns='urn:x-extauth:0' result='false'/></iq>",
    );
  });

  for (const kind of ['auth', 'isuser', 'setpass', 'tryregister', 'removeuser']) {
    test(`${kind}: carries the same child name in the namespace`, () => {
      const iq = parseXml(authResultReply(ADDRESS, kind, true));
      assert.equal(iq.name, 'iq');
      assert.equal(iq.attrs.type, 'result');
      const children = iq.getChildElements();
      assert.equal(children.length, 1);
      assert.equal(children[0]!.name, kind);
      assert.equal(children[0]!.attrs.xmlns, NS_EXTAUTH);
      assert.equal(children[0]!.attrs.result, 'true');
      assert.equal(children[0]!.getText(), '');
    });
  }

  test('escapes quotes, ampersands and angle brackets in the address', () => {
    const iq = parseXml(authResultReply(NASTY, 'auth', false));
    assertAddress(iq, NASTY);
    assert.equal(iq.getChildElements().length, 1);
  });
});

describe('errorReply', () => {
  const errors: StanzaError[] = [
    forbidden('requester not allowed'),
    badRequest("the 'user' attribute is missing or empty"),
    stanzaErrorFor(new Failure('too-large', 'request is 4001 bytes')),
    stanzaErrorFor(new Failure('timeout', 'no answer')),
    stanzaErrorFor(new Failure('crashed', 'script crashed')),
    stanzaErrorFor(new Failure('overloaded', 'too many requests')),
  ];
  for (const error of errors) {
    test(`${error.type}/${error.condition} has the condition in the stanzas namespace`, () => {
      const iq = parseXml(errorReply(ADDRESS, error));
      assert.equal(iq.name, 'iq');
      assert.equal(iq.attrs.type, 'error');
      assertAddress(iq, ADDRESS);
      const errorElement = iq.getChild('error');
      assert.ok(errorElement);
      assert.equal(errorElement.attrs.type, error.type);
      const condition = errorElement.getChild(error.condition, NS_STANZAS);
      assert.ok(condition, `<${error.condition} xmlns='${NS_STANZAS}'/>`);
      assert.equal(errorElement.getChildText('text', NS_STANZAS), error.text);
      // The condition comes first, as RFC 6120 requires, then the text.
      assert.deepEqual(
        errorElement.getChildElements().map((e) => e.name),
        [error.condition, 'text'],
      );
    });
  }

  test('the exact shape', () => {
    assert.equal(
      errorReply(ADDRESS, { type: 'auth', condition: 'forbidden', text: 'no' }),
      "<iq type='error' id='a1' to='example.com' from='auth.example.com'><error type='auth'>" +
        "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" +
        "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text></error></iq>",
    );
  });

  test('escapes markup in the text and in the address', () => {
    const text = `</text></error><auth result='true'/> & "more" <x>`;
    const iq = parseXml(errorReply(NASTY, { type: 'modify', condition: 'bad-request', text }));
    assertAddress(iq, NASTY);
    const errorElement = iq.getChild('error')!;
    assert.equal(errorElement.getChildText('text', NS_STANZAS), text);
    assert.equal(iq.getChildElements().length, 1, 'nothing injected next to <error>');
    assert.equal(errorElement.getChildElements().length, 2, 'nothing injected inside <error>');
  });
});

describe('discoInfoReply', () => {
  test('lists the extauth, disco#info and ping features and a component identity', () => {
    const iq = parseXml(discoInfoReply(ADDRESS, 'extauth-component'));
    assert.equal(iq.attrs.type, 'result');
    assertAddress(iq, ADDRESS);
    const query = iq.getChild('query', NS_DISCO_INFO);
    assert.ok(query);
    const features = query.getChildren('feature').map((f) => f.attrs.var);
    assert.deepEqual([...features].sort(), [NS_DISCO_INFO, NS_EXTAUTH, NS_PING].sort());
    assert.ok(features.includes('urn:x-extauth:0'));
    assert.ok(features.includes('http://jabber.org/protocol/disco#info'));
    assert.ok(features.includes('urn:xmpp:ping'));
    const identity = query.getChild('identity');
    assert.ok(identity);
    assert.equal(identity.attrs.category, 'component');
    assert.equal(identity.attrs.type, 'generic');
    assert.equal(identity.attrs.name, 'extauth-component');
  });

  test('escapes the name and the address', () => {
    const name = `x' onload="y" & <z>`;
    const iq = parseXml(discoInfoReply(NASTY, name));
    assertAddress(iq, NASTY);
    assert.equal(iq.getChild('query', NS_DISCO_INFO)!.getChild('identity')!.attrs.name, name);
  });
});

describe('emptyResultReply', () => {
  test('is a self-closed result iq', () => {
    assert.equal(emptyResultReply(ADDRESS), "<iq type='result' id='a1' to='example.com' from='auth.example.com'/>");
  });

  test('stays well-formed with markup in the address', () => {
    const address: ReplyAddress = { id: '></iq>', to: "x'></iq>", from: 'auth.example.com' };
    const iq = parseXml(emptyResultReply(address));
    assertAddress(iq, address);
    assert.equal(iq.attrs.type, 'result');
    assert.equal(iq.children.length, 0);
  });
});

describe('replies: property', () => {
  // Any printable text, as an attribute value parsed from a request could hold.
  const value = fc.string({ unit: 'grapheme', maxLength: 20 });
  const special = fc.string({ unit: fc.constantFrom("'", '"', '&', '<', '>', ';', '#', 'a', ' ', '/', '@', ']'), maxLength: 12 });
  const field = fc.oneof(value, special);

  test('property: every reply parses back to the address it was given', () => {
    fc.assert(
      fc.property(field, field, field, field, fc.boolean(), (id, to, from, text, result) => {
        const address = { id, to, from };
        for (const reply of [
          authResultReply(address, 'auth', result),
          errorReply(address, { type: 'wait', condition: 'internal-server-error', text }),
          discoInfoReply(address, text),
          emptyResultReply(address),
        ]) {
          const iq = parseXml(reply);
          assert.equal(iq.name, 'iq');
          assertAddress(iq, address);
        }
        const errorIq = parseXml(errorReply(address, { type: 'wait', condition: 'internal-server-error', text }));
        assert.equal(errorIq.getChild('error')!.getChildText('text', NS_STANZAS), text);
        assert.equal(parseXml(authResultReply(address, 'auth', result)).getChild('auth', NS_EXTAUTH)!.attrs.result, String(result));
      }),
      { numRuns: 300 },
    );
  });
});

describe('stanzaErrorFor', () => {
  const expected: Array<[ConstructorParameters<typeof Failure>[0], string, string]> = [
    ['too-large', 'modify', 'policy-violation'],
    ['timeout', 'wait', 'remote-server-timeout'],
    ['crashed', 'wait', 'internal-server-error'],
    ['bad-answer', 'wait', 'internal-server-error'],
    ['backend-error', 'wait', 'internal-server-error'],
    ['cannot-start', 'wait', 'internal-server-error'],
    ['overloaded', 'wait', 'resource-constraint'],
    ['stopping', 'wait', 'service-unavailable'],
  ];
  for (const [reason, type, condition] of expected) {
    test(`${reason} is ${type}/${condition}, with the failure's detail as text`, () => {
      const error = stanzaErrorFor(new Failure(reason, 'what happened'));
      assert.equal(error.type, type);
      assert.equal(error.condition, condition);
      assert.equal(error.text, 'what happened');
    });
  }
});
