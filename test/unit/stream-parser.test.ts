import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Element } from '@xmpp/xml';
import { SaxesParser } from 'saxes';
import { MAX_DEPTH, MAX_STANZA_BYTES, StreamParser, type StreamFault, type StreamHeader } from '../../src/xmpp/stream-parser.js';
import { splitAt } from './helpers.js';

const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.com'>`;

interface Parsed {
  header: StreamHeader | null;
  elements: Element[];
  closed: boolean;
  fault: StreamFault | null;
}

function parse(chunks: Array<string | Buffer>): Parsed {
  const result: Parsed = { header: null, elements: [], closed: false, fault: null };
  const parser = new StreamParser({
    onOpen: (header) => (result.header = header),
    onElement: (element) => result.elements.push(element),
    onClose: () => (result.closed = true),
    onFault: (fault) => (result.fault ??= fault),
  });
  for (const chunk of chunks) parser.write(chunk);
  return result;
}

function stanzas(body: string): Parsed {
  return parse([HEADER, body]);
}

/** A canonical form to compare trees: local names, resolved namespaces, sorted attributes, joined text. */
function canonical(element: Element, parentNs = ''): string {
  const ns = element.attrs.xmlns ?? parentNs;
  const attrs = Object.entries(element.attrs)
    .filter(([name]) => name !== 'xmlns')
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => ` ${name}=${JSON.stringify(value)}`)
    .join('');
  let inner = '';
  let text = '';
  for (const child of element.children) {
    if (typeof child === 'string') text += child;
    else {
      if (text !== '') inner += JSON.stringify(text);
      text = '';
      inner += canonical(child, ns);
    }
  }
  if (text !== '') inner += JSON.stringify(text);
  return `{${ns}}${element.name}${attrs}[${inner}]`;
}

/** The same canonical form, from saxes (a conformant XML parser), for one stanza. */
function saxesCanonical(stanza: string): string {
  const parser = new SaxesParser({ xmlns: true, fragment: true, additionalNamespaces: { '': 'jabber:component:accept' } });
  const stack: Array<{ head: string; inner: string; text: string }> = [];
  let result = '';
  const flush = (top: { inner: string; text: string }) => {
    if (top.text !== '') top.inner += JSON.stringify(top.text);
    top.text = '';
  };
  parser.on('opentag', (tag) => {
    const parent = stack[stack.length - 1];
    if (parent) flush(parent);
    const attrs = Object.values(tag.attributes)
      .filter((a) => a.prefix !== 'xmlns' && a.name !== 'xmlns')
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((a) => ` ${a.name}=${JSON.stringify(a.value)}`)
      .join('');
    stack.push({ head: `{${tag.uri}}${tag.local}${attrs}`, inner: '', text: '' });
  });
  const text = (t: string) => {
    const top = stack[stack.length - 1];
    if (top) top.text += t;
  };
  parser.on('text', text);
  parser.on('cdata', text);
  parser.on('closetag', () => {
    const top = stack.pop()!;
    flush(top);
    const done = `${top.head}[${top.inner}]`;
    const parent = stack[stack.length - 1];
    if (parent) parent.inner += done;
    else result = done;
  });
  parser.write(stanza).close();
  return result;
}

describe('stream parser', () => {
  it('reads the stream header: its default namespace, id and from', () => {
    const { header, fault } = parse([HEADER]);
    assert.equal(fault, null);
    assert.deepEqual(header, { xmlns: 'jabber:component:accept', id: 's1', from: 'example.com' });
  });

  it('hands over top-level elements with their namespace, and reports the end of the stream', () => {
    const { elements, closed, fault } = stanzas(`<iq type='get' id='1'><auth xmlns='urn:x-extauth:0' user='alice'>pw</auth></iq></stream:stream>`);
    assert.equal(fault, null);
    assert.equal(closed, true);
    assert.equal(elements.length, 1);
    const iq = elements[0]!;
    assert.equal(iq.name, 'iq');
    assert.equal(iq.attrs.xmlns, 'jabber:component:accept');
    const auth = iq.getChildElements()[0]!;
    assert.equal(auth.name, 'auth');
    assert.equal(auth.getNS(), 'urn:x-extauth:0');
    assert.equal(auth.getText(), 'pw');
  });

  it('text after a CDATA section is text too', () => {
    const { elements, fault } = stanzas(`<iq id='1'><auth xmlns='urn:x-extauth:0' user='alice'><![CDATA[p-alice]]>WRONG</auth></iq>`);
    assert.equal(fault, null);
    assert.equal(elements[0]!.getChildElements()[0]!.getText(), 'p-aliceWRONG');
  });

  it('CDATA keeps markup characters literally, and entities are decoded outside it', () => {
    const { elements } = stanzas(`<iq id='1'><auth xmlns='urn:x-extauth:0'>a&amp;b<![CDATA[<&amp;>]]>&#x263a;&#9731;&lt;</auth></iq>`);
    assert.equal(elements[0]!.getChildElements()[0]!.getText(), 'a&b<&amp;>☺☃<');
  });

  it('a prefixed element of a namespace is the same element as an unprefixed one', () => {
    const { elements, fault } = stanzas(`<iq id='1'><x:auth xmlns:x='urn:x-extauth:0' user='alice'>pw</x:auth></iq>`);
    assert.equal(fault, null);
    const auth = elements[0]!.getChildElements()[0]!;
    assert.equal(auth.name, 'auth');
    assert.equal(auth.getNS(), 'urn:x-extauth:0');
    assert.equal(auth.attrs.user, 'alice');
    assert.equal(auth.attrs['xmlns:x'], undefined, 'declarations are resolved, not kept');
  });

  it('an undeclared prefix is not well-formed', () => {
    const { elements, fault } = stanzas(`<iq id='1'><x:auth user='alice'>pw</x:auth></iq>`);
    assert.equal(fault?.condition, 'not-well-formed');
    assert.equal(elements.length, 0);
  });

  for (const [what, body] of [
    ['a comment between stanzas', `<!-- hello -->`],
    ['a comment inside a field', `<iq id='1'><auth xmlns='urn:x-extauth:0' user='alice'>p-alice<!-- x -->WRONG</auth></iq>`],
    ['a processing instruction', `<iq id='1'><auth xmlns='urn:x-extauth:0' user='alice'>p-alice<?pi x?>WRONG</auth></iq>`],
    ['a DOCTYPE', `<!DOCTYPE x [<!ENTITY e 'boom'>]>`],
    ['an entity other than the five predefined ones', `<iq id='1'><auth xmlns='urn:x-extauth:0' user='alice'>&e;</auth></iq>`],
  ] as const) {
    it(`${what} is restricted XML: the stream ends, no element is handed over`, () => {
      const { elements, fault } = stanzas(body);
      assert.equal(fault?.condition, 'restricted-xml');
      assert.equal(elements.length, 0, 'no truncated field reaches anyone');
    });
  }

  it('nothing is read after a fault', () => {
    const { elements, fault } = parse([HEADER, '<!-- x -->', `<iq id='1'/>`]);
    assert.equal(fault?.condition, 'restricted-xml');
    assert.equal(elements.length, 0);
  });

  for (const [what, body] of [
    ['a mismatched end tag', `<iq id='1'><auth xmlns='urn:x-extauth:0'>pw</iq></auth>`],
    ['an unquoted attribute', `<iq id=1/>`],
    ['a duplicate attribute', `<iq id='1' id='2'/>`],
    ['a < in an attribute', `<iq id='<'/>`],
    ['a bare ampersand', `<iq id='1'><auth xmlns='urn:x-extauth:0'>a & b</auth></iq>`],
    ['a character reference to a control character', `<iq id='1'><auth xmlns='urn:x-extauth:0'>&#1;</auth></iq>`],
    ['a raw control character', `<iq id='1'><auth xmlns='urn:x-extauth:0'>\u0001</auth></iq>`],
  ] as const) {
    it(`${what} is not well-formed`, () => {
      const { elements, fault } = stanzas(body);
      assert.equal(fault?.condition, 'not-well-formed');
      assert.equal(elements.length, 0);
    });
  }

  it('a fault message never quotes the input', () => {
    const secret = 'S3cr3t-pw';
    for (const body of [
      `<iq id='1'><auth xmlns='urn:x-extauth:0'>${secret}<!-- ${secret} --></auth></iq>`,
      `<iq id='1'><auth xmlns='urn:x-extauth:0'>&${secret};</auth></iq>`,
      `<iq id='1'><${secret}:auth>x</${secret}:auth></iq>`,
      `<iq id='1'><auth xmlns='urn:x-extauth:0'>${secret}</${secret}></iq>`,
      `<iq id='${secret}' id='${secret}'/>`,
    ]) {
      const { fault } = stanzas(body);
      assert.ok(fault !== null, body);
      assert.ok(!fault.message.includes(secret), fault.message);
    }
  });

  it('whitespace between stanzas is not kept anywhere', () => {
    const { elements } = stanzas(`  \n <iq id='1'/>\n\n  <iq id='2'/>  `);
    assert.equal(elements.length, 2);
    for (const element of elements) assert.equal(element.parent, null);
  });

  it('a stanza of exactly the bound is read; one byte more ends the stream with policy-violation, even within one read', () => {
    const open = `<iq id='1'><auth xmlns='urn:x-extauth:0'>`;
    const close = '</auth></iq>';
    // A two-byte character last, so that the bound falls inside a character too.
    const stanza = (bytes: number) => `${open}${'a'.repeat(bytes - open.length - close.length - 2)}é${close}`;
    assert.equal(Buffer.byteLength(stanza(MAX_STANZA_BYTES)), MAX_STANZA_BYTES);
    const exact = parse([`${HEADER}\n  ${stanza(MAX_STANZA_BYTES)}  <iq id='2'/>`]);
    assert.equal(exact.fault, null);
    assert.equal(exact.elements.length, 2);
    const over = parse([`${HEADER}${stanza(MAX_STANZA_BYTES + 1)}<iq id='2'/>`]);
    assert.equal(over.fault?.condition, 'policy-violation');
    assert.equal(over.elements.length, 0, 'nothing past the bound is handed over, though the whole stanza came in one read');
    const split = parse(splitAt(Buffer.from(`${HEADER}${stanza(MAX_STANZA_BYTES + 1)}`), [HEADER.length + MAX_STANZA_BYTES - 1]));
    assert.equal(split.fault?.condition, 'policy-violation');
    const many = parse([HEADER, ...Array.from({ length: 40 }, () => `<iq id='1'>${'a'.repeat(MAX_STANZA_BYTES / 8)}</iq>`)]);
    assert.equal(many.fault, null, 'the bound is per stanza, not per stream');
    assert.equal(many.elements.length, 40);
    const attribute = parse([HEADER, `<iq id='1' x='${'a'.repeat(MAX_STANZA_BYTES + 10)}`]);
    assert.equal(attribute.fault?.condition, 'policy-violation');
  });

  it('whitespace between stanzas counts toward no bound, however much of it comes', () => {
    const { elements, fault } = parse([
      HEADER,
      `<iq id='1'/>`,
      ' \n'.repeat(MAX_STANZA_BYTES),
      `<iq id='2'/>`,
      '\t'.repeat(3 * MAX_STANZA_BYTES),
      `<iq id='3'/>`,
    ]);
    assert.equal(fault, null);
    assert.equal(elements.length, 3);
  });

  it(`elements nested ${MAX_DEPTH} deep are read; one level more ends the stream with policy-violation`, () => {
    const nested = (depth: number) => `${'<a>'.repeat(depth)}${'</a>'.repeat(depth)}`;
    const deepest = parse([HEADER, nested(MAX_DEPTH)]);
    assert.equal(deepest.fault, null);
    assert.equal(deepest.elements.length, 1);
    const deeper = parse([HEADER, nested(MAX_DEPTH + 1)]);
    assert.equal(deeper.fault?.condition, 'policy-violation');
    assert.equal(deeper.elements.length, 0);
  });

  for (const [what, bytes] of [
    ['FF', [0xff]],
    ['FE', [0xfe]],
    ['C0', [0xc0]],
    ['an overlong /', [0xc0, 0xaf]],
    ['a surrogate encoded in UTF-8', [0xed, 0xa0, 0x80]],
    ['a truncated sequence', [0xe2, 0x82]],
  ] as const) {
    it(`bytes that are not UTF-8 (pw + ${what}) end the stream with unsupported-encoding; what came before is read`, () => {
      const before = Buffer.from(
        `${HEADER}<iq id='1'><auth xmlns='urn:x-extauth:0' user='a'>pw</auth></iq><iq id='2'><auth xmlns='urn:x-extauth:0' user='b'>pw`,
      );
      const { elements, fault } = parse([Buffer.concat([before, Buffer.from(bytes), Buffer.from('</auth></iq>')])]);
      assert.equal(fault?.condition, 'unsupported-encoding');
      assert.deepEqual(
        elements.map((e) => e.attrs.id),
        ['1'],
        'the request with the bad bytes never reaches anyone, as U+FFFD or otherwise',
      );
    });
  }

  it('an XML declaration naming an encoding other than UTF-8 ends the stream with unsupported-encoding', () => {
    const { fault } = parse([HEADER.replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='ISO-8859-1'?>")]);
    assert.equal(fault?.condition, 'unsupported-encoding');
    assert.equal(parse([HEADER.replace("<?xml version='1.0'?>", "<?xml version='1.0' encoding='utf-8'?>")]).fault, null);
  });

  it('a second stream header ends the stream with unsupported-stanza-type instead of swallowing every later request', () => {
    const { elements, fault } = stanzas(`<iq id='1'/>${HEADER.replace("<?xml version='1.0'?>", '')}<iq id='2'/>`);
    assert.equal(fault?.condition, 'unsupported-stanza-type');
    assert.deepEqual(
      elements.map((e) => e.attrs.id),
      ['1'],
    );
  });

  it('CR LF is one line feed and a lone CR is a line feed, wherever the reads are cut (XML end-of-line handling)', () => {
    const bytes = Buffer.from(`${HEADER}<iq id='1'><auth xmlns='urn:x-extauth:0'>a\r\nb\rc&#13;d</auth></iq>`);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const { elements, fault } = parse(splitAt(bytes, [cut]));
      assert.equal(fault, null);
      assert.equal(elements[0]!.getChildElements()[0]!.getText(), 'a\nb\nc\rd', `cut at ${cut}`);
    }
  });

  it('a namespace name with spaces around it is refused rather than read as another namespace', () => {
    const { elements, fault } = stanzas(`<iq id='1'><auth xmlns=' urn:x-extauth:0' user='a'>pw</auth></iq>`);
    assert.equal(fault?.condition, 'not-well-formed');
    assert.equal(elements.length, 0);
  });

  it('a UTF-8 character split across reads stays one character, whatever the cut', () => {
    const password = 'pä☃😀ss';
    const bytes = Buffer.from(`${HEADER}<iq id='1'><auth xmlns='urn:x-extauth:0' user='ü'>${password}</auth></iq>`);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 12 }), (cuts) => {
        const { elements, fault } = parse(splitAt(bytes, cuts));
        assert.equal(fault, null);
        const auth = elements[0]!.getChildElements()[0]!;
        assert.equal(auth.getText(), password);
        assert.equal(auth.attrs.user, 'ü');
      }),
    );
  });

  it('cutting the input anywhere gives the same elements as one write', () => {
    const body = `<iq id='1' a="x&amp;y&#10;z"><x:auth xmlns:x='urn:x-extauth:0' user='u'>a<![CDATA[b]]]>c&lt;d]]&gt;</x:auth></iq> <iq id='2'/>`;
    const whole = stanzas(body).elements.map((e) => canonical(e));
    assert.equal(whole.length, 2);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: body.length }), { maxLength: 10 }), (cuts) => {
        const sorted = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: string[] = [HEADER];
        let start = 0;
        for (const cut of sorted) {
          chunks.push(body.slice(start, cut));
          start = cut;
        }
        chunks.push(body.slice(start));
        const { elements, fault } = parse(chunks);
        assert.equal(fault, null);
        assert.deepEqual(
          elements.map((e) => canonical(e)),
          whole,
        );
      }),
    );
  });

  it('reads generated stanzas exactly as saxes, a conformant XML parser, does', () => {
    const text = fc.stringMatching(/^[a-zA-Z0-9 äé☃<>&'"\]\n\t\r]{0,12}$/);
    const escapeText = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    const escapeAttr = (t: string) => escapeText(t).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
    const piece = fc.oneof(
      text.map((t) => escapeText(t)),
      text.filter((t) => !t.includes(']]>')).map((t) => `<![CDATA[${t}]]>`),
      text.map((t) => [...t].map((c) => `&#${c.codePointAt(0)};`).join('')),
    );
    const stanza = fc.record({
      prefixed: fc.boolean(),
      user: text,
      quote: fc.constantFrom("'", '"'),
      pieces: fc.array(piece, { maxLength: 5 }),
      rawAttr: fc.stringMatching(/^[a-z \t\n\r]{0,6}$/),
    });
    fc.assert(
      fc.property(stanza, ({ prefixed, user, quote, pieces, rawAttr }) => {
        const name = prefixed ? 'x:auth' : 'auth';
        const ns = prefixed ? `xmlns:x=${quote}urn:x-extauth:0${quote}` : `xmlns=${quote}urn:x-extauth:0${quote}`;
        const xmlText = `<iq id='1' raw=${quote}${rawAttr}${quote}><${name} ${ns} user=${quote}${escapeAttr(user)}${quote}>${pieces.join('')}</${name}></iq>`;
        const ours = stanzas(xmlText);
        assert.equal(ours.fault, null, xmlText);
        assert.equal(canonical(ours.elements[0]!), saxesCanonical(xmlText), xmlText);
      }),
      { numRuns: 300 },
    );
  });
});
