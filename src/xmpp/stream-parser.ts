import { StringDecoder } from 'node:string_decoder';
import xml, { type Element } from '@xmpp/xml';
import { NS_STREAMS } from './namespaces.js';

/** The stream-level conditions of RFC 6120 §4.9.3 this parser can raise. */
export type StreamFaultCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

/**
 * Why the incoming XML cannot be read any further. The message never quotes the input: a
 * malformed stanza may be a request, and a request may carry a password.
 */
export class StreamFault extends Error {
  constructor(
    readonly condition: StreamFaultCondition,
    message: string,
  ) {
    super(message);
    this.name = 'StreamFault';
  }
}

export interface StreamHeader {
  /** The default namespace the peer declared: `jabber:component:accept` on a component port. */
  readonly xmlns: string | undefined;
  readonly id: string | undefined;
  readonly from: string | undefined;
}

export interface StreamParserEvents {
  readonly onOpen: (header: StreamHeader) => void;
  /** A complete top-level element, named by its local name, its namespace in `attrs.xmlns`. */
  readonly onElement: (element: Element) => void;
  readonly onClose: () => void;
  readonly onFault: (fault: StreamFault) => void;
}

/** A top-level element larger than this ends the stream; an auth query is a few hundred bytes. */
export const MAX_STANZA_CHARS = 1024 * 1024;

const XML_NAMESPACE = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NAMESPACE = 'http://www.w3.org/2000/xmlns/';

// XML 1.0 names, slightly simplified (every non-ASCII character from U+00C0 up is allowed).
const NAME = /^[A-Za-z_:\u00c0-\uffff][-.0-9A-Za-z_:\u00b7\u00c0-\uffff]*$/;
/** Names seen before need no second check: a stream uses the same dozen over and over. */
const knownNames = new Set<string>();
function isName(name: string): boolean {
  if (knownNames.has(name)) return true;
  if (!NAME.test(name)) return false;
  if (knownNames.size < 1024) knownNames.add(name);
  return true;
}
// Characters XML 1.0 does not allow at all (surrogate pairs are left to the UTF-8 decoder).
const NOT_XML_CHAR = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/;
/** Text or a value without any of these is taken as it is (the common case). */
const SPECIAL_IN_TEXT = /[\u0000-\u001f&\]\ufffe\uffff]/;
const SPECIAL_IN_VALUE = /[\u0000-\u001f&<\ufffe\uffff]/;
const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

/** Namespace bindings in scope, innermost first ('' is the default namespace). */
interface Binding {
  readonly prefix: string;
  readonly uri: string;
  readonly next: Binding | null;
}

interface Open {
  readonly qname: string;
  readonly uri: string;
  readonly scope: Binding | null;
  readonly element: Element | null;
}

class NotWellFormed extends Error {}
class Restricted extends Error {}

/**
 * Reads an XMPP stream as XML: namespaces are resolved, so a prefixed
 * `<x:auth xmlns:x='urn:x-extauth:0'>` is the same element as `<auth xmlns=…>`; CDATA is text
 * wherever it sits; entity and character references are decoded and nothing else is
 * expanded; comments, processing instructions and DOCTYPEs are restricted XML in a stream
 * (RFC 6120 §11.1) and end it; whitespace between stanzas is dropped, never kept. Bytes are
 * decoded as UTF-8 with one streaming decoder, so a character split across two TCP reads stays
 * one character. After the first fault, further input is ignored.
 *
 * Hand-written for the hot path (a general SAX parser cost four times the CPU per request);
 * test/unit/stream-parser.test.ts checks it against saxes, a conformant parser.
 */
export class StreamParser {
  private readonly decoder = new StringDecoder('utf8');
  private readonly open: Open[] = [];
  private rest = '';
  /** Characters consumed before `rest`, and where the open top-level element began. */
  private consumed = 0;
  private stanzaStart = 0;
  private seenRoot = false;
  private failed = false;
  private ended = false;

  constructor(private readonly events: StreamParserEvents) {}

  /** True once a fault was raised or the stream was closed: nothing more will be reported. */
  get done(): boolean {
    return this.failed || this.ended;
  }

  write(data: Buffer | string): void {
    if (this.done) return;
    const text = typeof data === 'string' ? data : this.decoder.write(data);
    if (text === '') return;
    const input = this.rest === '' ? text : this.rest + text;
    this.rest = '';
    try {
      const consumed = this.parse(input);
      if (consumed < input.length) this.rest = input.slice(consumed);
      this.consumed += consumed;
    } catch (error) {
      if (error instanceof Restricted) return this.fail('restricted-xml', error.message);
      if (error instanceof NotWellFormed) return this.fail('not-well-formed', error.message);
      throw error;
    }
    const open = this.open.length > 1 ? this.consumed - this.stanzaStart : 0;
    if (!this.done && open + this.rest.length > MAX_STANZA_CHARS) {
      this.fail('policy-violation', `an element or text is larger than ${MAX_STANZA_CHARS} characters`);
    }
  }

  private fail(condition: StreamFaultCondition, message: string): void {
    if (this.done) return;
    this.failed = true;
    this.open.length = 0;
    this.rest = '';
    this.events.onFault(new StreamFault(condition, message));
  }

  /** Parses what is complete in `s`; returns how much was consumed. */
  private parse(s: string): number {
    let pos = 0;
    const length = s.length;
    while (pos < length && !this.done) {
      if (s.charCodeAt(pos) !== 60 /* < */) {
        let lt = s.indexOf('<', pos);
        if (lt === -1) {
          // Keep an unfinished reference for the next read.
          const amp = s.lastIndexOf('&');
          lt = amp >= pos && s.indexOf(';', amp) === -1 ? amp : length;
          // So is a ']' or ']]' that could start the forbidden ']]>'.
          while (lt > pos && s.charCodeAt(lt - 1) === 93 /* ] */ && lt > length - 2) lt--;
          if (lt === pos) return pos;
        }
        this.text(s.slice(pos, lt), false);
        pos = lt;
        continue;
      }
      if (pos + 1 >= length) return pos;
      const next = s.charCodeAt(pos + 1);
      if (next === 33 /* ! */) {
        if (s.startsWith('<![CDATA[', pos)) {
          const end = s.indexOf(']]>', pos + 9);
          if (end === -1) return pos;
          this.text(s.slice(pos + 9, end), true);
          pos = end + 3;
          continue;
        }
        if (s.startsWith('<!--', pos)) throw new Restricted('the stream contains an XML comment');
        if (length - pos < 9 && ('<![CDATA['.startsWith(s.slice(pos)) || '<!--'.startsWith(s.slice(pos)))) return pos;
        throw new Restricted('the stream contains a document type declaration');
      }
      if (next === 63 /* ? */) {
        const end = s.indexOf('?>', pos + 2);
        if (end === -1) {
          if (this.seenRoot || pos !== 0) throw new Restricted('the stream contains a processing instruction');
          return pos;
        }
        // The XML declaration may open the stream; any other processing instruction is restricted.
        if (this.seenRoot || !/^<\?xml\s/.test(s.slice(pos, pos + 6))) throw new Restricted('the stream contains a processing instruction');
        pos = end + 2;
        continue;
      }
      const end = tagEnd(s, pos + 1);
      if (end === -1) return pos;
      if (next === 47 /* / */) this.closeTag(s.slice(pos + 2, end).trimEnd());
      else this.openTag(s, pos + 1, end);
      pos = end + 1;
    }
    return this.done ? length : pos;
  }

  private openTag(s: string, from: number, end: number): void {
    const selfClosing = s.charCodeAt(end - 1) === 47; /* / */
    const body = s.slice(from, selfClosing ? end - 1 : end);
    const size = body.length;
    let nameEnd = 0;
    while (nameEnd < size && !isSpace(body.charCodeAt(nameEnd))) nameEnd++;
    const qname = body.slice(0, nameEnd);
    if (!isName(qname)) throw new NotWellFormed('the stream contains a malformed tag');
    if (this.ended || (this.seenRoot && this.open.length === 0)) throw new NotWellFormed('the stream has content after its end');

    const names: string[] = [];
    const values: string[] = [];
    const parent = this.open[this.open.length - 1];
    let scope: Binding | null = parent?.scope ?? ROOT_SCOPE;
    for (let i = nameEnd; ; ) {
      const spaceStart = i;
      while (i < size && isSpace(body.charCodeAt(i))) i++;
      if (i >= size) break;
      const eq = body.indexOf('=', i);
      if (i === spaceStart || eq === -1) throw new NotWellFormed('the stream contains a malformed attribute');
      let nameStop = eq;
      while (isSpace(body.charCodeAt(nameStop - 1))) nameStop--;
      const name = body.slice(i, nameStop);
      let q = eq + 1;
      while (q < size && isSpace(body.charCodeAt(q))) q++;
      const quote = body.charCodeAt(q);
      const close = quote === 34 || quote === 39 ? body.indexOf(quote === 34 ? '"' : "'", q + 1) : -1;
      if (close === -1 || !isName(name) || names.includes(name)) throw new NotWellFormed('the stream contains a malformed attribute');
      const value = attributeValue(body.slice(q + 1, close));
      i = close + 1;
      if (name === 'xmlns') scope = { prefix: '', uri: value, next: scope };
      else if (name.startsWith('xmlns:')) {
        const prefix = name.slice(6);
        if (value === '' || prefix === 'xmlns' || (prefix === 'xml') !== (value === XML_NAMESPACE) || value === XMLNS_NAMESPACE) {
          throw new NotWellFormed('the stream contains a bad namespace declaration');
        }
        scope = { prefix, uri: value, next: scope };
      }
      names.push(name);
      values.push(value);
    }

    const colon = qname.indexOf(':');
    const local = colon === -1 ? qname : qname.slice(colon + 1);
    const uri = lookup(scope, colon === -1 ? '' : qname.slice(0, colon));
    if (uri === undefined || local === '' || local.includes(':')) throw new NotWellFormed('the stream uses an undeclared namespace prefix');

    if (!this.seenRoot) {
      this.seenRoot = true;
      if (local !== 'stream' || uri !== NS_STREAMS) throw new NotWellFormed('the peer did not open an XMPP stream');
      this.open.push({ qname, uri, scope, element: null });
      const attr = (name: string) => {
        const index = names.indexOf(name);
        return index === -1 ? undefined : values[index];
      };
      this.events.onOpen({ xmlns: lookup(scope, ''), id: attr('id'), from: attr('from') });
      if (selfClosing) this.closeTag(qname);
      return;
    }

    const attrs: Record<string, string> = {};
    for (let k = 0; k < names.length; k++) {
      const name = names[k]!;
      const attrColon = name.indexOf(':');
      if (attrColon !== -1) {
        const prefix = name.slice(0, attrColon);
        if (prefix === 'xmlns') continue;
        if (lookup(scope, prefix) === undefined) throw new NotWellFormed('the stream uses an undeclared namespace prefix');
      } else if (name === 'xmlns') continue;
      attrs[name] = values[k]!;
    }
    const parentElement = parent?.element ?? null;
    if (parentElement === null || parent!.uri !== uri) attrs.xmlns = uri;
    const element = new xml.Element(local, attrs);
    if (parentElement !== null) parentElement.append(element);
    else this.stanzaStart = this.consumed + from - 1;
    this.open.push({ qname, uri, scope, element });
    if (selfClosing) this.closeTag(qname);
  }

  private closeTag(qname: string): void {
    const top = this.open.pop();
    if (top === undefined || top.qname !== qname) throw new NotWellFormed('the stream contains a mismatched end tag');
    if (this.open.length === 0) {
      this.ended = true;
      this.events.onClose();
      return;
    }
    if (this.open.length === 1 && top.element !== null) {
      top.element.parent = null;
      this.events.onElement(top.element);
    }
  }

  private text(raw: string, cdata: boolean): void {
    if (!SPECIAL_IN_TEXT.test(raw)) {
      const element = this.open[this.open.length - 1]?.element;
      if (element !== null && element !== undefined) element.t(raw);
      else if (!this.seenRoot && !/^[ \t\r\n]*$/.test(raw)) throw new NotWellFormed('the stream starts with text');
      return;
    }
    if (NOT_XML_CHAR.test(raw)) throw new NotWellFormed('the stream contains a character XML does not allow');
    if (!cdata && raw.includes(']]>')) throw new NotWellFormed("the stream contains ']]>' in text");
    const element = this.open[this.open.length - 1]?.element;
    if (element === null || element === undefined) {
      // Between stanzas only whitespace keepalives are expected; whatever it is, it is not kept.
      if (!this.seenRoot && !/^[ \t\r\n]*$/.test(raw)) throw new NotWellFormed('the stream starts with text');
      if (!cdata) decodeText(raw);
      return;
    }
    const normalised = raw.includes('\r') ? raw.replace(/\r\n?/g, '\n') : raw;
    element.t(cdata ? normalised : decodeText(normalised));
  }
}

const ROOT_SCOPE: Binding = { prefix: 'xml', uri: XML_NAMESPACE, next: null };

function lookup(scope: Binding | null, prefix: string): string | undefined {
  for (let binding = scope; binding !== null; binding = binding.next) if (binding.prefix === prefix) return binding.uri;
  return undefined;
}

function isSpace(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}

/** Finds the `>` that ends the tag starting at `from`, skipping quoted attribute values. */
function tagEnd(s: string, from: number): number {
  let quote = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (quote !== 0) {
      if (c === quote) quote = 0;
    } else if (c === 62 /* > */) return i;
    else if (c === 34 || c === 39) quote = c;
    else if (c === 60 /* < */) throw new NotWellFormed('the stream contains a malformed tag');
  }
  return -1;
}

function decodeText(text: string): string {
  let amp = text.indexOf('&');
  if (amp === -1) return text;
  let out = '';
  let from = 0;
  while (amp !== -1) {
    const semicolon = text.indexOf(';', amp + 1);
    if (semicolon === -1) throw new NotWellFormed('the stream contains an unterminated reference');
    out += text.slice(from, amp) + decodeReference(text.slice(amp + 1, semicolon));
    from = semicolon + 1;
    amp = text.indexOf('&', from);
  }
  return out + text.slice(from);
}

/** XML attribute-value normalisation: each literal tab, newline or carriage return is a space. */
function attributeValue(raw: string): string {
  if (!SPECIAL_IN_VALUE.test(raw)) return raw;
  if (NOT_XML_CHAR.test(raw)) throw new NotWellFormed('the stream contains a character XML does not allow');
  if (raw.includes('<')) throw new NotWellFormed('the stream contains a malformed attribute');
  const spaced = /[\t\n\r]/.test(raw) ? raw.replace(/\r\n|[\t\n\r]/g, ' ') : raw;
  return decodeText(spaced);
}

function decodeReference(name: string): string {
  const predefined = PREDEFINED[name];
  if (predefined !== undefined) return predefined;
  const code = /^#x[0-9a-fA-F]+$/.test(name) ? parseInt(name.slice(2), 16) : /^#[0-9]+$/.test(name) ? parseInt(name.slice(1), 10) : -1;
  if (code === -1) throw new Restricted('the stream refers to an entity XMPP does not allow');
  const allowed =
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff);
  if (!allowed) throw new NotWellFormed('the stream refers to a character XML does not allow');
  return String.fromCodePoint(code);
}
