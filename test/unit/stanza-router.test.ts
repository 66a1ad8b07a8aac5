import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Element } from '@xmpp/xml';
import type { AuthRequest } from '../../src/core/auth-request.js';
import { Failure, type Outcome } from '../../src/core/failure.js';
import { parseBareJid } from '../../src/xmpp/access-list.js';
import { createStanzaRouter } from '../../src/xmpp/stanza-router.js';
import { StreamParser } from '../../src/xmpp/stream-parser.js';

const HEADER = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s'>`;

/**
 * The router against a mock pool and a mock socket: XML goes in through the same stream parser
 * the component uses, the XML the router sends comes out as strings.
 */
function mockRouter(options: { accepting?: boolean } = {}) {
  const out: string[] = [];
  const forgotten: Array<[string, string]> = [];
  const submitted: Array<{ request: AuthRequest; done: (outcome: Outcome) => void }> = [];
  const logged: string[] = [];
  const log = pino({ level: 'trace' }, { write: (line: string) => void logged.push(line) });
  const route = createStanzaRouter({
    domain: 'auth.example.com',
    allow: [parseBareJid('example.com')!],
    name: 'extauth-component',
    log,
    submit: (request, _arrivedAt, done) => submitted.push({ request, done }),
    send: (stanza) => out.push(stanza),
    accepting: () => options.accepting ?? true,
    forget: (user, server) => forgotten.push([user, server]),
  });
  const parser = new StreamParser({
    onOpen: () => {},
    onElement: (element: Element) => route(element),
    onClose: () => {},
    onFault: (fault) => assert.fail(fault),
  });
  parser.write(HEADER);
  return { input: (xml: string) => parser.write(xml), out, submitted, logged, forgotten };
}

const q = (child: string, type = 'get', from = 'example.com') => `<iq type='${type}' id='q1' from='${from}' to='auth.example.com'>${child}</iq>`;

describe('stanza router', () => {
  it('forget: drops the account (server defaulting to the requester), answers an empty result, asks no script', () => {
    const m = mockRouter();
    m.input(q(`<forget xmlns='urn:x-extauth:0' user='alice' server='example.org'/>`, 'set'));
    m.input(q(`<forget xmlns='urn:x-extauth:0' user='bob'/>`, 'set'));
    assert.deepEqual(m.forgotten, [
      ['alice', 'example.org'],
      ['bob', 'example.com'],
    ]);
    assert.deepEqual(m.submitted, []);
    assert.deepEqual(m.out, Array(2).fill(`<iq type='result' id='q1' to='example.com' from='auth.example.com'/>`));
  });

  it('forget: the same rules as every query (iq set, a user, no colon, allowed requesters only)', () => {
    const m = mockRouter();
    for (const [child, type, from] of [
      [`<forget xmlns='urn:x-extauth:0' user='alice'/>`, 'get', 'example.com'],
      [`<forget xmlns='urn:x-extauth:0'/>`, 'set', 'example.com'],
      [`<forget xmlns='urn:x-extauth:0' user='a:b'/>`, 'set', 'example.com'],
      [`<forget xmlns='urn:x-extauth:0' user='alice'/>`, 'set', 'evil.example'],
    ] as const) {
      m.input(q(child, type, from));
    }
    assert.deepEqual(m.forgotten, []);
    assert.deepEqual(
      m.out.map((reply) => /<(bad-request|forbidden) /.exec(reply)?.[1]),
      ['bad-request', 'bad-request', 'bad-request', 'forbidden'],
    );
  });

  it('submits an auth query and answers with the result in the same child name', () => {
    const m = mockRouter();
    m.input(q(`<auth xmlns='urn:x-extauth:0' user='alice' server='example.com'>pw</auth>`));
    assert.deepEqual(m.submitted[0]?.request, { kind: 'auth', user: 'alice', server: 'example.com', password: 'pw' });
    assert.equal(m.out.length, 0, 'nothing is sent before the answer');
    m.submitted[0]!.done(true);
    assert.deepEqual(m.out, [`<iq type='result' id='q1' to='example.com' from='auth.example.com'><auth xmlns='urn:x-extauth:0' result='true'/></iq>`]);
  });

  it('a prefixed query is the same query; server defaults to the requester domain', () => {
    const m = mockRouter();
    m.input(q(`<e:isuser xmlns:e='urn:x-extauth:0' user='bob'/>`));
    assert.deepEqual(m.submitted[0]?.request, { kind: 'isuser', user: 'bob', server: 'example.com' });
    m.submitted[0]!.done(false);
    assert.deepEqual(m.out, [`<iq type='result' id='q1' to='example.com' from='auth.example.com'><isuser xmlns='urn:x-extauth:0' result='false'/></iq>`]);
  });

  it('maps a failure to its stanza error, without the password', () => {
    const m = mockRouter();
    m.input(q(`<setpass xmlns='urn:x-extauth:0' user='alice'>n3w-secret</setpass>`, 'set'));
    m.submitted[0]!.done(new Failure('timeout', 'the script did not answer in time'));
    assert.equal(m.out.length, 1);
    assert.match(
      m.out[0]!,
      /^<iq type='error' id='q1' to='example.com' from='auth.example.com'><error type='wait'><remote-server-timeout xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'\/>/,
    );
    assert.ok(!m.out[0]!.includes('n3w-secret'));
    assert.ok(!m.logged.join('').includes('n3w-secret'), 'nor is it logged');
  });

  it('refuses a requester outside the allow list with forbidden, never asking the script', () => {
    const m = mockRouter();
    m.input(q(`<auth xmlns='urn:x-extauth:0' user='alice'>pw</auth>`, 'get', 'evil.org'));
    assert.equal(m.submitted.length, 0);
    assert.match(m.out[0]!, /<error type='auth'><forbidden /);
  });

  it('refuses bad requests: wrong iq type, missing user, two children', () => {
    const m = mockRouter();
    m.input(q(`<auth xmlns='urn:x-extauth:0' user='alice'>pw</auth>`, 'set'));
    m.input(q(`<auth xmlns='urn:x-extauth:0'>pw</auth>`));
    m.input(q(`<isuser xmlns='urn:x-extauth:0' user='a'/><isuser xmlns='urn:x-extauth:0' user='b'/>`));
    assert.equal(m.submitted.length, 0);
    assert.equal(m.out.length, 3);
    for (const reply of m.out) assert.match(reply, /<error type='modify'><bad-request /);
  });

  it('answers with service-unavailable while shutting down', () => {
    const m = mockRouter({ accepting: false });
    m.input(q(`<auth xmlns='urn:x-extauth:0' user='alice'>pw</auth>`));
    assert.equal(m.submitted.length, 0);
    assert.match(m.out[0]!, /<error type='wait'><service-unavailable /);
  });

  it('answers disco#info and ping; other namespaces get service-unavailable', () => {
    const m = mockRouter();
    m.input(q(`<query xmlns='http://jabber.org/protocol/disco#info'/>`, 'get', 'anyone@else.org/r'));
    m.input(q(`<ping xmlns='urn:xmpp:ping'/>`));
    m.input(q(`<query xmlns='jabber:iq:version'/>`));
    assert.match(m.out[0]!, /<feature var='urn:x-extauth:0'\/>/);
    assert.equal(m.out[1], `<iq type='result' id='q1' to='example.com' from='auth.example.com'/>`);
    assert.match(m.out[2]!, /<error type='cancel'><service-unavailable /);
  });

  it('ignores results, errors, messages, presences and iqs without id or from', () => {
    const m = mockRouter();
    m.input(`<iq type='result' id='r' from='example.com' to='auth.example.com'/>`);
    m.input(`<iq type='error' id='r' from='example.com' to='auth.example.com'/>`);
    m.input(`<message from='example.com' to='auth.example.com'><body>hi</body></message>`);
    m.input(`<presence from='example.com'/>`);
    m.input(`<iq type='get' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>`);
    m.input(`<iq type='get' id='x'><ping xmlns='urn:xmpp:ping'/></iq>`);
    assert.deepEqual(m.out, []);
  });

  it('an iq in another namespace is not a stanza of ours', () => {
    const m = mockRouter();
    m.input(`<c:iq xmlns:c='jabber:client' type='get' id='x' from='example.com'><ping xmlns='urn:xmpp:ping'/></c:iq>`);
    assert.deepEqual(m.out, []);
  });
});
