import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import xml from '@xmpp/xml';
import type { RequestKind } from '../../src/core/auth-request.js';
import { StanzaError } from '../../src/xmpp/stanza-error.js';
import { parseAuthQuery } from '../../src/xmpp/auth-query.js';
import { parseXml } from './helpers.js';

const NS = 'urn:x-extauth:0';
const REQUESTER_DOMAIN = 'example.com';

/** Parses `<iq>` with one child and runs parseAuthQuery on that child with the iq's type. */
function parseIq(iqXml: string, requesterDomain = REQUESTER_DOMAIN) {
  const iq = parseXml(iqXml);
  const [query] = iq.getChildElements();
  assert.ok(query, 'the iq has a child');
  return parseAuthQuery(iq.attrs.type, query, requesterDomain);
}

function assertStanzaError(fn: () => unknown, type: string, condition: string): StanzaError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof StanzaError, `expected a StanzaError ${condition}, got ${String(caught)}`);
  assert.equal(caught.type, type);
  assert.equal(caught.condition, condition);
  return caught;
}

const badRequest = (fn: () => unknown) => assertStanzaError(fn, 'modify', 'bad-request');

describe('parseAuthQuery: each kind', () => {
  test('auth (get) carries user, server and password', () => {
    assert.deepEqual(parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice' server='example.org'>secret</auth></iq>`), {
      kind: 'auth',
      user: 'alice',
      server: 'example.org',
      password: 'secret',
    });
  });

  test('isuser (get) carries user and server, no password', () => {
    const request = parseIq(`<iq type='get'><isuser xmlns='${NS}' user='alice' server='example.org'/></iq>`);
    assert.deepEqual(request, { kind: 'isuser', user: 'alice', server: 'example.org' });
    assert.ok(!('password' in request));
  });

  test('isuser ignores any text', () => {
    const request = parseIq(`<iq type='get'><isuser xmlns='${NS}' user='alice'>stray</isuser></iq>`);
    assert.deepEqual(request, { kind: 'isuser', user: 'alice', server: REQUESTER_DOMAIN });
  });

  test('setpass (set) carries the new password', () => {
    assert.deepEqual(parseIq(`<iq type='set'><setpass xmlns='${NS}' user='bob' server='example.org'>n3w</setpass></iq>`), {
      kind: 'setpass',
      user: 'bob',
      server: 'example.org',
      password: 'n3w',
    });
  });

  test('tryregister (set) carries the password', () => {
    assert.deepEqual(parseIq(`<iq type='set'><tryregister xmlns='${NS}' user='carol'>pw</tryregister></iq>`), {
      kind: 'tryregister',
      user: 'carol',
      server: REQUESTER_DOMAIN,
      password: 'pw',
    });
  });

  test('removeuser (set) carries no password', () => {
    const request = parseIq(`<iq type='set'><removeuser xmlns='${NS}' user='dave'/></iq>`);
    assert.deepEqual(request, { kind: 'removeuser', user: 'dave', server: REQUESTER_DOMAIN });
    assert.ok(!('password' in request));
  });

  test('server defaults to the requester domain', () => {
    assert.equal(parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice'>pw</auth></iq>`, 'xmpp.example.net').server, 'xmpp.example.net');
    assert.equal(parseIq(`<iq type='get'><isuser xmlns='${NS}' user='alice'/></iq>`, 'other.example').server, 'other.example');
  });

  test('user and server are passed exactly, case included', () => {
    const request = parseIq(`<iq type='get'><isuser xmlns='${NS}' user='Jürgen.O&apos;Neil' server='Exämple.COM'/></iq>`);
    assert.equal(request.user, "Jürgen.O'Neil");
    assert.equal(request.server, 'Exämple.COM');
  });
});

describe('parseAuthQuery: the password is taken exactly', () => {
  const cases: Array<[string, string, string]> = [
    ['leading and trailing spaces', '  p w  ', '  p w  '],
    ['colons', ':a:b::', ':a:b::'],
    ['entities', 'a&amp;b&lt;c&gt;d&quot;&apos;', 'a&b<c>d"\''],
    ['multi-byte UTF-8', 'pässwörd€😀', 'pässwörd€😀'],
    ['a character reference', '&#x20AC;&#233;', '€é'],
    ['nothing', '', ''],
  ];
  for (const [name, text, password] of cases) {
    test(name, () => {
      assert.equal(parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice'>${text}</auth></iq>`).password, password);
    });
  }

  test('an element without any text gives an empty password', () => {
    assert.equal(parseIq(`<iq type='set'><setpass xmlns='${NS}' user='alice'/></iq>`).password, '');
  });

  test('property: any password without control characters survives serialisation exactly', () => {
    const password = fc.string({ unit: 'binary', maxLength: 40 }).filter((p) => !/[\u0000-\u001f\u007f\ufffe\uffff]/.test(p));
    fc.assert(
      fc.property(password, (pw) => {
        const iqXml = xml('iq', { type: 'get' }, xml('auth', { xmlns: NS, user: 'alice' }, pw)).toString();
        assert.equal(parseIq(iqXml).password, pw);
      }),
    );
  });
});

describe('parseAuthQuery: errors', () => {
  const wrongTypes: Array<[RequestKind, string | undefined]> = [
    ['auth', 'set'],
    ['isuser', 'set'],
    ['setpass', 'get'],
    ['tryregister', 'get'],
    ['removeuser', 'get'],
    ['auth', undefined],
    ['auth', 'result'],
    ['setpass', 'error'],
    ['auth', 'GET'],
  ];
  for (const [kind, iqType] of wrongTypes) {
    test(`${kind} in an iq of type ${String(iqType)} → bad-request`, () => {
      badRequest(() => parseAuthQuery(iqType, xml(kind, { xmlns: NS, user: 'alice' }, 'pw'), REQUESTER_DOMAIN));
    });
  }

  test('missing user → bad-request', () => {
    badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' server='example.com'>pw</auth></iq>`));
    badRequest(() => parseIq(`<iq type='set'><removeuser xmlns='${NS}'/></iq>`));
  });

  test('empty user → bad-request', () => {
    badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user=''>pw</auth></iq>`));
    badRequest(() => parseIq(`<iq type='get'><isuser xmlns='${NS}' user=''/></iq>`));
  });

  test('empty server → bad-request', () => {
    badRequest(() => parseIq(`<iq type='get'><isuser xmlns='${NS}' user='alice' server=''/></iq>`));
  });

  test("':' in user → bad-request", () => {
    badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='al:ice'>pw</auth></iq>`));
    badRequest(() => parseIq(`<iq type='get'><isuser xmlns='${NS}' user=':'/></iq>`));
  });

  test("':' in server → bad-request", () => {
    badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice' server='example.com:5222'>pw</auth></iq>`));
  });

  test("':' in a defaulted server (the requester domain) → bad-request", () => {
    badRequest(() => parseIq(`<iq type='get'><isuser xmlns='${NS}' user='alice'/></iq>`, 'bad:domain'));
  });

  // Through the XML parser: only characters XML can carry (\t, \n, \r and U+007F).
  const parsedControls: Array<[string, string]> = [
    ['\\n', '&#10;'],
    ['\\r', '&#13;'],
    ['\\t', '&#9;'],
    ['U+007F', '&#x7f;'],
  ];
  for (const [name, ref] of parsedControls) {
    test(`${name} (parsed) in user, server or password → bad-request`, () => {
      badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='a${ref}b'>pw</auth></iq>`));
      badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice' server='example.com${ref}'>pw</auth></iq>`));
      badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice'>pw${ref}</auth></iq>`));
      badRequest(() => parseIq(`<iq type='set'><setpass xmlns='${NS}' user='alice'>${ref}pw</setpass></iq>`));
    });
  }

  test('a literal newline in the password text → bad-request', () => {
    badRequest(() => parseIq(`<iq type='get'><auth xmlns='${NS}' user='alice'>pw\n</auth></iq>`));
  });

  // Built directly: characters XML 1.0 cannot carry at all, which a lax parser might still let through.
  const builtControls: Array<[string, string]> = [
    ['\\0', '\u0000'],
    ['\\n', '\n'],
    ['\\r', '\r'],
    ['U+0001', '\u0001'],
    ['U+001F', '\u001f'],
    ['U+007F', '\u007f'],
  ];
  for (const [name, c] of builtControls) {
    test(`${name} (built) in user, server or password → bad-request`, () => {
      badRequest(() => parseAuthQuery('get', xml('auth', { xmlns: NS, user: `a${c}b` }, 'pw'), REQUESTER_DOMAIN));
      badRequest(() => parseAuthQuery('get', xml('isuser', { xmlns: NS, user: 'alice', server: `${c}example.com` }), REQUESTER_DOMAIN));
      badRequest(() => parseAuthQuery('get', xml('auth', { xmlns: NS, user: 'alice' }, `pw${c}`), REQUESTER_DOMAIN));
      badRequest(() => parseAuthQuery('set', xml('tryregister', { xmlns: NS, user: 'alice' }, `${c}`), REQUESTER_DOMAIN));
    });
  }

  test('a control character in a text node after a child element still counts', () => {
    const query = xml('auth', { xmlns: NS, user: 'alice' }, 'pw', xml('x'), '\u0000');
    badRequest(() => parseAuthQuery('get', query, REQUESTER_DOMAIN));
  });

  test('characters just outside the control ranges are accepted', () => {
    const request = parseAuthQuery('get', xml('auth', { xmlns: NS, user: 'a b\u0080', server: 'x\u00a0y' }, ' \u0080\u2028~'), REQUESTER_DOMAIN);
    assert.deepEqual(request, { kind: 'auth', user: 'a b\u0080', server: 'x\u00a0y', password: ' \u0080\u2028~' });
  });

  test('an unknown element name → cancel/feature-not-implemented', () => {
    assertStanzaError(() => parseIq(`<iq type='get'><login xmlns='${NS}' user='alice'>pw</login></iq>`), 'cancel', 'feature-not-implemented');
    assertStanzaError(() => parseAuthQuery('set', xml('AUTH', { xmlns: NS, user: 'alice' }), REQUESTER_DOMAIN), 'cancel', 'feature-not-implemented');
    assertStanzaError(() => parseAuthQuery('get', xml('toString', { xmlns: NS, user: 'alice' }), REQUESTER_DOMAIN), 'cancel', 'feature-not-implemented');
    assertStanzaError(() => parseAuthQuery('get', xml('__proto__', { xmlns: NS, user: 'alice' }), REQUESTER_DOMAIN), 'cancel', 'feature-not-implemented');
  });

  test('an unknown element name is checked before the iq type', () => {
    assertStanzaError(() => parseAuthQuery('result', xml('nope', { xmlns: NS }), REQUESTER_DOMAIN), 'cancel', 'feature-not-implemented');
  });

  test('a long unknown element name is cut short in the error text', () => {
    const name = `x${'y'.repeat(200)}`;
    const error = assertStanzaError(() => parseAuthQuery('get', xml(name, { xmlns: NS }), REQUESTER_DOMAIN), 'cancel', 'feature-not-implemented');
    assert.ok(!error.text.includes(name));
    assert.ok(error.text.length < 120);
  });
});

describe('parseAuthQuery: no error ever carries the password', () => {
  const control = fc.constantFrom('\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f');
  // Passwords that contain at least one control character, so they can never be a mere
  // substring of a fixed error text.
  const password = fc
    .tuple(fc.string({ unit: 'binary', maxLength: 20 }), control, fc.string({ unit: 'binary', maxLength: 20 }))
    .map(([a, c, b]) => `${a}${c}${b}`);
  const user = fc.oneof(
    fc.constant<string | undefined>(undefined),
    fc.constantFrom('', 'alice', 'al:ice', 'a\nb', 'a\u007fb'),
    fc.string({ unit: 'binary', maxLength: 10 }),
  );
  const server = fc.oneof(fc.constant<string | undefined>(undefined), fc.constantFrom('', 'example.org', 'ex:ample', 'ex\u0000'));
  const kind = fc.constantFrom('auth', 'isuser', 'setpass', 'tryregister', 'removeuser', 'unknown');
  const iqType = fc.constantFrom<string | undefined>('get', 'set', 'result', undefined);

  test('property: whatever is wrong, neither text nor message contains the password', () => {
    fc.assert(
      fc.property(kind, iqType, user, server, password, (kind, type, user, server, pw) => {
        const attrs: Record<string, string | undefined> = { xmlns: NS };
        if (user !== undefined) attrs.user = user;
        if (server !== undefined) attrs.server = server;
        let thrown: unknown;
        try {
          parseAuthQuery(type, xml(kind, attrs, pw), REQUESTER_DOMAIN);
        } catch (error) {
          thrown = error;
        }
        if (thrown === undefined) {
          // Only a kind that ignores the text may succeed with such a password.
          assert.ok(kind === 'isuser' || kind === 'removeuser', `${kind} accepted a password with a control character`);
          return;
        }
        assert.ok(thrown instanceof StanzaError);
        assert.ok(!thrown.text.includes(pw), `text: ${thrown.text}`);
        assert.ok(!thrown.message.includes(pw), `message: ${thrown.message}`);
      }),
      { numRuns: 500 },
    );
  });

  test('property: a valid query with a control character in its password is a bad-request', () => {
    fc.assert(
      fc.property(fc.constantFrom<[RequestKind, string]>(['auth', 'get'], ['setpass', 'set'], ['tryregister', 'set']), password, ([kind, type], pw) => {
        const error = badRequest(() => parseAuthQuery(type, xml(kind, { xmlns: NS, user: 'alice' }, pw), REQUESTER_DOMAIN));
        assert.ok(!error.text.includes(pw));
      }),
    );
  });
});
