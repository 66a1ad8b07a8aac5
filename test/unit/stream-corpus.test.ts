// Adversarial inputs for the stream parser, each fed whole and then cut in two at every byte
// (the large ones at a sample of cuts): the outcome must be the same whatever the cut, and the
// same as what the bytes say.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Element } from '@xmpp/xml';
import { MAX_DEPTH, MAX_STANZA_BYTES, StreamParser, type StreamFaultCondition } from '../../src/xmpp/stream-parser.js';
import { splitAt } from './helpers.js';

const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.com'>`;
const NS = 'urn:x-extauth:0';

interface Outcome {
  /** Every element handed over, serialised. */
  elements: string[];
  /** The user and text of every auth query handed over: what the component would act on. */
  auths: Array<[string | undefined, string]>;
  fault: StreamFaultCondition | null;
  closed: boolean;
}

function run(chunks: readonly Buffer[]): Outcome {
  const outcome: Outcome = { elements: [], auths: [], fault: null, closed: false };
  const parser = new StreamParser({
    onOpen: () => {},
    onElement: (element: Element) => {
      outcome.elements.push(element.toString());
      const auth = element.getChild('auth', NS);
      if (auth !== undefined) outcome.auths.push([auth.attrs.user, auth.getText()]);
    },
    onClose: () => (outcome.closed = true),
    onFault: (fault) => {
      assert.equal(outcome.fault, null, 'one fault at most');
      outcome.fault = fault.condition;
    },
  });
  for (const chunk of chunks) parser.write(chunk);
  return outcome;
}

const bytes = (...parts: Array<string | readonly number[] | Buffer>) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p as number[]))));
const auth = (user: string, password: string | readonly number[] | Buffer, attrs = '') =>
  bytes(`<iq type='set' id='q' from='example.com' to='auth.example.com'${attrs}><auth xmlns='${NS}' user='${user}'>`, password, '</auth></iq>');
const attributes = (count: number) => Array.from({ length: count }, (_, i) => ` a${i}='x'`).join('');
const declarations = (count: number) => Array.from({ length: count }, (_, i) => ` xmlns:p${i}='urn:p${i}'`).join('');

interface Case {
  what: string;
  /** The bytes after the stream header (the whole stream when `whole` is set). */
  input: Buffer;
  whole?: boolean;
  fault: StreamFaultCondition | null;
  /** The auth queries, as user and password, that the bytes hold before any fault. */
  auths: Array<[string, string]>;
  /** Cut at this many evenly spread places instead of at every byte. */
  sample?: number;
}

const ok = (what: string, input: Buffer, auths: Array<[string, string]>): Case => ({ what, input, fault: null, auths });
const bad = (what: string, input: Buffer, fault: StreamFaultCondition, auths: Array<[string, string]> = []): Case => ({ what, input, fault, auths });
const ALICE = auth('alice', 'good');

const CASES: Case[] = [
  // Shapes that were quadratic in the hand-written parser.
  ok('100 attributes', bytes(auth('alice', 'pw', attributes(100))), [['alice', 'pw']]),
  {
    ...ok('60,000 attributes from a requester that is not allowed', bytes(`<iq type='get' id='h' from='evil.example'${attributes(60_000)}/>`, ALICE), [
      ['alice', 'good'],
    ]),
    sample: 12,
  },
  ok('100 xmlns:p declarations', bytes(auth('alice', 'pw', declarations(100))), [['alice', 'pw']]),
  {
    ...ok('30,000 xmlns:p declarations, the last one used', bytes(`<iq id='h'${declarations(30_000)}><p29999:x/></iq>`, ALICE), [['alice', 'good']]),
    sample: 12,
  },
  ok(`nesting ${MAX_DEPTH} deep`, bytes(`${'<a>'.repeat(MAX_DEPTH)}${'</a>'.repeat(MAX_DEPTH)}`, ALICE), [['alice', 'good']]),
  bad(`nesting ${MAX_DEPTH + 1} deep`, bytes(ALICE, `${'<a>'.repeat(MAX_DEPTH + 1)}${'</a>'.repeat(MAX_DEPTH + 1)}`, ALICE), 'policy-violation', [
    ['alice', 'good'],
  ]),
  { ...bad('nesting 300,000 deep', bytes('<a>'.repeat(300_000)), 'policy-violation'), sample: 12 },
  {
    ...bad('a stanza one byte over the bound', bytes(ALICE, `<iq id='h'>${'x'.repeat(MAX_STANZA_BYTES - 15)}</iq>`, ALICE), 'policy-violation', [
      ['alice', 'good'],
    ]),
    sample: 12,
  },
  { ...ok('a stanza of exactly the bound', bytes(`<iq id='h'>${'x'.repeat(MAX_STANZA_BYTES - 16)}</iq>`, ALICE), [['alice', 'good']]), sample: 12 },

  // UTF-8: decoded as one stream; anything that is not UTF-8 is never forwarded, as U+FFFD or otherwise.
  ok('a password in four scripts', auth('alice', 'pä☃😀ss'), [['alice', 'pä☃😀ss']]),
  ...(
    [
      ['FF', [0xff]],
      ['FE', [0xfe]],
      ['C0', [0xc0]],
      ['C1', [0xc1]],
      ['F5', [0xf5, 0x80, 0x80, 0x80]],
      ['a lone continuation byte', [0x80]],
      ['an overlong / (2 bytes)', [0xc0, 0xaf]],
      ['an overlong / (3 bytes)', [0xe0, 0x80, 0xaf]],
      ['an overlong / (4 bytes)', [0xf0, 0x80, 0x80, 0xaf]],
      ['a high surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
      ['a low surrogate encoded in UTF-8', [0xed, 0xbf, 0xbf]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['a truncated 2-byte sequence', [0xc3]],
      ['a truncated 3-byte sequence', [0xe2, 0x82]],
      ['a truncated 4-byte sequence', [0xf0, 0x9f, 0x98]],
    ] as const
  ).map(([what, tail]) => bad(`pw + ${what}`, bytes(ALICE, auth('bob', bytes('pw', [...tail]))), 'unsupported-encoding', [['alice', 'good']])),
  bad('FF in a user name', bytes(`<iq id='1'><auth xmlns='${NS}' user='b`, [0xff], `'>pw</auth></iq>`), 'unsupported-encoding'),

  // End-of-line handling over the whole stream; character data as it is.
  ok('CR LF in text', auth('alice', 'a\r\nb'), [['alice', 'a\nb']]),
  ok('a lone CR in text', auth('alice', 'a\rb'), [['alice', 'a\nb']]),
  ok('CR LF and a lone CR in an attribute value', auth('al\r\nic\re', 'pw'), [['al ic e', 'pw']]),
  ok('a tab and a newline in an attribute value', auth('al\tic\ne', 'pw'), [['al ic e', 'pw']]),
  ok('character references for CR, LF and tab in an attribute value', auth('a&#13;&#10;&#9;b', 'pw'), [['a\r\n\tb', 'pw']]),
  ok('U+007F and U+0085 are XML characters (the router refuses control characters)', auth('alice', 'a\u007fb\u0085c'), [['alice', 'a\u007fb\u0085c']]),

  // Entities and character references.
  ok('the five predefined entities', auth('a&amp;b', '&lt;&gt;&amp;&apos;&quot;'), [['a&b', `<>&'"`]]),
  ok('character references', auth('alice', '&#65;&#x42;&#x1F600;&#xe9;'), [['alice', 'AB😀é']]),
  ok('CDATA, with text after it', auth('alice', '<![CDATA[<&amp;>]]>after'), [['alice', '<&amp;>after']]),
  bad('an undefined entity', bytes(ALICE, auth('bob', '&pw;')), 'restricted-xml', [['alice', 'good']]),
  {
    ...bad(
      'an external entity, declared before the stream header',
      bytes(`<!DOCTYPE stream:stream [<!ENTITY ext SYSTEM 'file:///etc/passwd'>]>`, HEADER.replace("<?xml version='1.0'?>", ''), auth('bob', '&ext;')),
      'restricted-xml',
    ),
    whole: true,
  },
  bad('an undefined entity in an attribute', auth('&who;', 'pw'), 'restricted-xml'),
  bad('a bare ampersand, and no semicolon ever after', bytes(auth('bob', 'a & b'), ALICE, ALICE), 'not-well-formed'),
  bad('&#0;', auth('bob', '&#0;'), 'not-well-formed'),
  bad('&#xD800; (a surrogate)', auth('bob', '&#xD800;'), 'not-well-formed'),
  bad('&#x110000;', auth('bob', '&#x110000;'), 'not-well-formed'),
  bad('&#xFFFE;', auth('bob', '&#xFFFE;'), 'not-well-formed'),
  bad('&#1; (a control character)', auth('bob', '&#1;'), 'not-well-formed'),
  bad('a raw control character', auth('bob', 'p\u0001w'), 'not-well-formed'),
  bad('a raw U+001F', auth('bob', 'p\u001fw'), 'not-well-formed'),
  bad('a raw NUL', auth('bob', [0x70, 0x00, 0x77]), 'not-well-formed'),
  bad("']]>' in text", auth('bob', 'a]]>b'), 'not-well-formed'),

  // Attribute values and names.
  bad('< in an attribute value', auth('b<ob', 'pw'), 'not-well-formed'),
  bad('an unquoted attribute value', bytes(`<iq id=1/>`), 'not-well-formed'),
  bad('a duplicate attribute', bytes(`<iq id='1' id='2'/>`), 'not-well-formed'),
  bad(
    'a:x and b:x bound to the same namespace (a duplicate expanded name)',
    bytes(`<iq id='1' xmlns:a='urn:same' xmlns:b='urn:same' a:x='1' b:x='2'/>`),
    'not-well-formed',
  ),
  bad('xmlns:= (an empty prefix)', bytes(`<iq id='1' xmlns:='urn:x'/>`), 'not-well-formed'),
  bad('<:iq> (an empty prefix)', bytes(`<:iq id='1'/>`), 'not-well-formed'),
  bad('an undeclared prefix', bytes(`<iq id='1'><x:auth user='bob'>pw</x:auth></iq>`), 'not-well-formed'),
  bad('a name with ×', bytes(`<iq id='1'><a×b/></iq>`), 'not-well-formed'),
  bad('an attribute name with ×', bytes(`<iq id='1' a×b='1'/>`), 'not-well-formed'),
  bad('xmlns:p undeclared with an empty value', bytes(`<iq id='1' xmlns:p=''/>`), 'not-well-formed'),
  bad('the xmlns prefix on an element', bytes(`<xmlns:iq id='1'/>`), 'not-well-formed'),
  bad('a mismatched end tag', bytes(`<iq id='1'><auth xmlns='${NS}' user='bob'>pw</iq></auth>`), 'not-well-formed'),
  bad('a namespace name with spaces around it', bytes(`<iq id='1'><auth xmlns='${NS} ' user='bob'>pw</auth></iq>`), 'not-well-formed'),
  ok('a prefixed auth element', bytes(`<iq id='1'><x:auth xmlns:x='${NS}' user='alice'>pw</x:auth></iq>`), [['alice', 'pw']]),

  // The stream itself.
  bad('a second stream header', bytes(ALICE, HEADER.replace("<?xml version='1.0'?>", ''), ALICE), 'unsupported-stanza-type', [['alice', 'good']]),
  { ...bad('text before the stream header', bytes(`hello${HEADER}`), 'not-well-formed'), whole: true },
  {
    ...bad('an XML declaration naming Latin-1', bytes(HEADER.replace("version='1.0'", "version='1.0' encoding='ISO-8859-1'")), 'unsupported-encoding'),
    whole: true,
  },
  {
    ...bad('a DOCTYPE before the stream header', bytes(`<!DOCTYPE x [<!ENTITY pw 'boom'>]>${HEADER.replace("<?xml version='1.0'?>", '')}`), 'restricted-xml'),
    whole: true,
  },
  { ...ok('the stream closed', bytes(HEADER, ALICE, '</stream:stream>', ALICE), [['alice', 'good']]), whole: true },
  ok('whitespace and CDATA between stanzas', bytes(' \r\n\t', ALICE, '<![CDATA[junk]]>', ALICE), [
    ['alice', 'good'],
    ['alice', 'good'],
  ]),
  bad('a comment between stanzas', bytes(ALICE, '<!-- x -->', ALICE), 'restricted-xml', [['alice', 'good']]),
  bad('a comment inside a password', auth('bob', 'good<!-- x -->WRONG'), 'restricted-xml'),
  bad('a processing instruction', bytes(ALICE, '<?pi x?>', ALICE), 'restricted-xml', [['alice', 'good']]),
  bad('an XML declaration inside the stream', bytes(ALICE, "<?xml version='1.0'?>", ALICE), 'not-well-formed', [['alice', 'good']]),
  bad('a DOCTYPE between stanzas', bytes(ALICE, `<!DOCTYPE x [<!ENTITY pw 'boom'>]>`, ALICE), 'restricted-xml', [['alice', 'good']]),
];

/** The cuts to try: every byte, or `sample` evenly spread ones plus both ends. */
function cutsOf(length: number, sample: number | undefined): number[] {
  if (sample === undefined) return Array.from({ length: length + 1 }, (_, i) => i);
  return [0, 1, length - 1, length, ...Array.from({ length: sample }, (_, i) => Math.floor(((i + 1) * length) / (sample + 1)))];
}

describe('stream parser: adversarial corpus, cut at every byte', () => {
  for (const c of CASES) {
    it(c.what, () => {
      const input = c.whole ? c.input : Buffer.concat([Buffer.from(HEADER), c.input]);
      const whole = run([input]);
      assert.equal(whole.fault, c.fault, 'the stream error');
      assert.deepEqual(whole.auths, c.auths, 'the auth queries acted on, exactly as the bytes say');
      for (const cut of cutsOf(input.length, c.sample)) {
        const split = run(splitAt(input, [cut]));
        assert.equal(split.fault, whole.fault, `the same stream error when cut at ${cut}`);
        assert.deepEqual(split.elements, whole.elements, `the same elements when cut at ${cut}`);
        assert.equal(split.closed, whole.closed);
      }
    });
  }
});
