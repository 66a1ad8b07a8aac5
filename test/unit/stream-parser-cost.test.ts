// The stream parser's cost grows linearly with a stanza's size whatever its shape. Work is counted,
// not timed: every call into saxes, into the stream parser and into the element type, and every
// read of saxes's stack of open elements (where resolving a namespace prefix walks), while one
// stanza of a given shape is parsed at one size and at twice that size.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import xml from '@xmpp/xml';
import { SaxesParser } from 'saxes';
import { MAX_DEPTH, StreamParser } from '../../src/xmpp/stream-parser.js';

const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='example.com'>`;

let work = 0;
const restores: Array<() => void> = [];

function countCalls(prototype: object): void {
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const descriptor = Object.getOwnPropertyDescriptor(prototype, name)!;
    const original: unknown = descriptor.value;
    if (name === 'constructor' || typeof original !== 'function') continue;
    const counted = function (this: unknown, ...args: unknown[]) {
      work++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    Object.defineProperty(prototype, name, { ...descriptor, value: counted });
    restores.push(() => Object.defineProperty(prototype, name, descriptor));
  }
}

/** Counts every read of saxes's stack of open elements, through a proxy set up when it is made. */
function countStackReads(): void {
  const prototype = SaxesParser.prototype as unknown as { _init: (this: { tags: object[] }) => void };
  const init = prototype._init;
  prototype._init = function (this: { tags: object[] }) {
    init.call(this);
    this.tags = new Proxy(this.tags, {
      get(target, key, receiver) {
        work++;
        return Reflect.get(target, key, receiver);
      },
    });
  };
  restores.push(() => {
    prototype._init = init;
  });
}

/** The work to read the stream header and then `stanza`, and whether the stream survived. */
function workFor(stanza: string): { work: number; fault: string | null } {
  let fault: string | null = null;
  const parser = new StreamParser({ onOpen: () => {}, onElement: () => {}, onClose: () => {}, onFault: (f) => (fault = f.condition) });
  parser.write(HEADER);
  work = 0;
  parser.write(stanza);
  return { work, fault };
}

const repeat = (piece: (i: number) => string, bytes: number) => {
  let out = '';
  for (let i = 0; out.length < bytes; i++) out += piece(i);
  return out;
};

/** Stanzas of about `bytes` bytes, one per shape. */
const SHAPES: Record<string, (bytes: number) => string> = {
  text: (n) => `<iq id='1'><auth xmlns='urn:x-extauth:0' user='u'>${'p'.repeat(n)}</auth></iq>`,
  attributes: (n) => `<iq type='get' id='1' from='evil.example'${repeat((i) => ` a${i}='x'`, n)}/>`,
  'xmlns:p declarations': (n) => `<iq id='1'${repeat((i) => ` xmlns:p${i}='urn:p${i}'`, n)}><p0:x/></iq>`,
  'prefixed attributes': (n) => `<iq id='1'${repeat((i) => ` xmlns:p${i}='urn:p${i}' p${i}:a='x'`, n)}/>`,
  'long attribute value': (n) => `<iq id='1' a='${'x'.repeat(n)}'/>`,
  'entities and character references': (n) => `<iq id='1'>${repeat(() => '&amp;&#x263a;&lt;', n)}</iq>`,
  'CDATA sections between text': (n) => `<iq id='1'>${repeat(() => '<![CDATA[a<b]]>c', n)}</iq>`,
  'sibling elements': (n) => `<iq id='1'>${repeat((i) => `<x n='${i}'/>`, n)}</iq>`,
  [`nesting ${MAX_DEPTH} deep, over and over`]: (n) => {
    const chain = `${'<a>'.repeat(MAX_DEPTH - 1)}${'</a>'.repeat(MAX_DEPTH - 1)}`;
    return `<iq id='1'>${repeat(() => chain, n)}</iq>`;
  },
};

const SIZE = 96 * 1024;

describe('stream parser: the work grows linearly with the size of a stanza, whatever its shape', () => {
  before(() => {
    countCalls(SaxesParser.prototype);
    countCalls(StreamParser.prototype);
    countCalls(xml.Element.prototype);
    countStackReads();
  });
  after(() => {
    for (const restore of restores.reverse()) restore();
  });

  const perByte: Record<string, number> = {};
  for (const [shape, make] of Object.entries(SHAPES)) {
    it(`${shape}: twice the size, at most twice the work`, () => {
      const small = make(SIZE);
      const large = make(2 * SIZE);
      const a = workFor(small);
      const b = workFor(large);
      assert.equal(a.fault, null);
      assert.equal(b.fault, null);
      const ratio = b.work / a.work;
      assert.ok(ratio > 1.5 && ratio < 2.1, `work ${a.work} → ${b.work} (×${ratio.toFixed(2)}) for ${small.length} → ${large.length} bytes`);
      perByte[shape] = b.work / large.length;
    });
  }

  it('no shape costs more per byte than a small multiple of plain text', () => {
    // Text is about one unit per byte; the deepest nesting allowed is the dearest shape (about
    // ten), as resolving an element's namespace walks up the elements open around it.
    const text = perByte.text!;
    for (const [shape, cost] of Object.entries(perByte)) {
      assert.ok(cost < 12 * text, `${shape}: ${cost.toFixed(2)} per byte, text ${text.toFixed(2)}`);
    }
  });

  it('nesting deeper than the bound stops at the bound: the work does not grow with the rest', () => {
    const a = workFor('<a>'.repeat(SIZE / 3));
    const b = workFor('<a>'.repeat((2 * SIZE) / 3));
    assert.equal(a.fault, 'policy-violation');
    assert.equal(b.fault, 'policy-violation');
    assert.ok(b.work < 1.1 * a.work, `work ${a.work} → ${b.work}`);
  });
});
