import xml, { type Element } from '@xmpp/xml';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { NS_STREAMS } from './namespaces.js';

/**
 * The stream-level conditions of RFC 6120 §4.9.3 this parser can raise:
 * - `not-well-formed`: the bytes break the rules of XML 1.0 or of XML namespaces (§4.9.3.13).
 * - `restricted-xml`: a comment, processing instruction, DOCTYPE or entity reference other than
 *   the five predefined ones, which XMPP forbids (§4.9.3.18, §11.1).
 * - `unsupported-encoding`: bytes that are not UTF-8, or an XML declaration naming another
 *   encoding. §4.9.3.22 names this condition for both "an encoding that is not supported" and a
 *   stream "otherwise improperly encoded (e.g., by violating the rules of the UTF-8 encoding)",
 *   which is more precise than `not-well-formed` for a byte the decoder refuses.
 * - `policy-violation`: a stanza larger or deeper than this side accepts (§4.9.3.16).
 * - `unsupported-stanza-type`: a second `<stream:stream>` inside the stream. It is well-formed
 *   XML, so not `not-well-formed`; it is a first-level child in the streams namespace that
 *   XEP-0114 has no use for, which is what §4.9.3.24 describes. Read as an ordinary element it
 *   would swallow every later request as its child, and nothing would ever be answered.
 */
export type StreamFaultCondition = 'not-well-formed' | 'restricted-xml' | 'unsupported-encoding' | 'policy-violation' | 'unsupported-stanza-type';

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

/**
 * A top-level element larger than this many bytes ends the stream; an auth query is a few hundred.
 * Counted from the first byte after the previous top-level element that is not whitespace (the
 * element's `<` on a sane stream) to the `>` that closes it; the stream header is counted the same
 * way from the first byte of the stream.
 */
export const MAX_STANZA_BYTES = 1024 * 1024;

/**
 * Elements nested deeper than this inside a stanza end the stream. Auth queries are two deep and
 * the deepest payloads in common XMPP use stay under twenty. The bound also keeps the parser's
 * cost linear: resolving a namespace prefix walks up the open elements.
 */
export const MAX_DEPTH = 64;

/** Stops saxes at once: it keeps reading after reporting an error, and we never want that. */
class Stop extends Error {
  /** `null`: the stream was closed, and nothing after it is read. */
  constructor(readonly fault: StreamFault | null) {
    super(fault?.message ?? 'stream closed');
  }
}

function stop(condition: StreamFaultCondition, message: string): never {
  throw new Stop(new StreamFault(condition, message));
}

/** The saxes errors that are XMPP's restrictions rather than XML's rules. */
const RESTRICTED = ['undefined entity.', 'inappropriately located doctype declaration.'];

const NOT_SPACE = /[^ \t\r\n]/;
/** Characters that are in no XML name and no character reference. */
const NOT_IN_REFERENCE = /[\s<>&'"=/;]/;

/**
 * Reads an XMPP stream as XML with saxes, a conformant parser, with namespaces: a prefixed
 * `<x:auth xmlns:x='urn:x-extauth:0'>` is the same element as `<auth xmlns=…>`. What is ours
 * around it: the bytes are decoded as one UTF-8 stream by a fatal decoder (a character split
 * across reads stays one character, and a byte that is not UTF-8 ends the stream rather than
 * becoming U+FFFD); the elements are assembled into `@xmpp/xml` elements, CDATA as text;
 * comments, processing instructions, DOCTYPEs and unknown entities end the stream as restricted
 * XML (RFC 6120 §11.1); a stanza's size and depth are bounded; whitespace and anything else
 * between stanzas is never kept. After the first fault, further input is ignored.
 *
 * saxes costs about two and a half times the CPU of the hand-written parser this replaced (the
 * bench measures both), whose shortcuts were quadratic on hostile stanzas; at the one place where
 * hostile bytes arrive, a maintained, conformant parser is worth it (docs/design.md).
 */
export class StreamParser {
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private readonly saxes: SaxesParser<{ xmlns: true; position: false }>;
  /** The stanza being assembled, outermost first, and the namespace of each. */
  private readonly open: Element[] = [];
  private readonly uris: string[] = [];
  private streamOpen = false;
  private failed = false;
  private ended = false;

  // Byte accounting, so the size bound is exact whatever the reads are.
  /** Bytes handed to the decoder, and those it has turned into characters for saxes. */
  private received = 0;
  private fed = 0;
  /** The last (up to three) bytes received: the start of a character the decoder still holds. */
  private tail = Buffer.alloc(0);
  /** Where the element or stray text now being read began (bytes), when something is. */
  private itemStart = 0;
  /**
   * Between top-level elements with only whitespace read since the last one: nothing is being
   * read, and the next non-whitespace byte starts the next item.
   */
  private between = false;
  /** The piece saxes is reading: its text, its first character's index and byte in the stream. */
  private piece = '';
  private pieceChar = 0;
  private pieceByte = 0;
  private pieceAscii = true;
  /** Where in the piece the text between top-level elements starts (characters). */
  private gapFrom = 0;
  /** A character index in the piece and its stream offset in bytes, for non-ASCII pieces. */
  private cursorChar = 0;
  private cursorByte = 0;
  /** Text is taken only inside a stanza: then saxes keeps none between stanzas either. */
  private readonly textHandler = (text: string) => this.onText(text);

  constructor(private readonly events: StreamParserEvents) {
    this.saxes = new SaxesParser({ xmlns: true, position: false, defaultXMLVersion: '1.0', forceXMLVersion: true });
    const saxes = this.saxes;
    saxes.on('xmldecl', (decl) => {
      if (decl.encoding !== undefined && decl.encoding.toLowerCase() !== 'utf-8') {
        stop('unsupported-encoding', 'the stream declares an encoding other than UTF-8');
      }
    });
    saxes.on('opentagstart', () => this.onOpenTagStart());
    saxes.on('opentag', (tag) => this.onOpenTag(tag));
    saxes.on('closetag', () => this.onCloseTag());
    saxes.on('cdata', (text) => this.onText(text));
    saxes.on('comment', () => stop('restricted-xml', 'the stream contains an XML comment'));
    saxes.on('processinginstruction', () => stop('restricted-xml', 'the stream contains a processing instruction'));
    saxes.on('doctype', () => stop('restricted-xml', 'the stream contains a document type declaration'));
    saxes.on('error', (error) => {
      // saxes names what is wrong, then quotes the input after ': ': keep only the former.
      const what = error.message.split(': ')[0]!.replace(/\.$/, '');
      if (RESTRICTED.includes(error.message)) stop('restricted-xml', `the stream is restricted XML (${what})`);
      stop('not-well-formed', `the stream is not well-formed XML (${what})`);
    });
  }

  /** True once a fault was raised or the stream was closed: nothing more will be reported. */
  get done(): boolean {
    return this.failed || this.ended;
  }

  write(data: Buffer | string): void {
    if (this.done) return;
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    try {
      let offset = 0;
      while (offset < bytes.length && !this.done) {
        // Never let the decoder hand saxes a byte past the bound of what is being read: at most
        // what is left of it, or a whole bound when nothing is (then nothing that starts inside
        // this piece can outgrow it before the piece ends).
        const limit = this.between ? this.fed + MAX_STANZA_BYTES : this.itemStart + MAX_STANZA_BYTES;
        const room = limit - this.received;
        if (room <= 0) stop('policy-violation', `an element or text is larger than ${MAX_STANZA_BYTES} bytes`);
        const chunk = bytes.subarray(offset, offset + room);
        offset += chunk.length;
        this.feed(chunk);
      }
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      if (error.fault !== null) this.fail(error.fault);
    }
  }

  private fail(fault: StreamFault): void {
    if (this.done) return;
    this.failed = true;
    this.open.length = 0;
    this.uris.length = 0;
    this.piece = '';
    this.events.onFault(fault);
  }

  private feed(chunk: Buffer): void {
    let text: string;
    try {
      text = this.decoder.decode(chunk, { stream: true });
    } catch {
      // Everything before the first byte that is not UTF-8 is read as it would be in any other
      // cut of the same bytes; then the stream ends.
      this.parse(this.validPrefix(chunk));
      stop('unsupported-encoding', 'the stream is not valid UTF-8');
    }
    this.received += chunk.length;
    this.tail = Buffer.concat([this.tail, chunk.subarray(-3)]).subarray(-3);
    this.parse(text);
  }

  /** The characters the bytes held back by the decoder plus `chunk` decode to, up to the first invalid byte. */
  private validPrefix(chunk: Buffer): string {
    const pending = this.received - this.fed;
    const bytes = Buffer.concat([this.tail.subarray(this.tail.length - pending), chunk]);
    const decodes = (length: number) => {
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, length), { stream: true });
        return true;
      } catch {
        return false;
      }
    };
    // Whether a prefix decodes is monotonic in its length: find the longest that does.
    let good = 0;
    let bad = bytes.length;
    while (bad - good > 1) {
      const middle = (good + bad) >>> 1;
      if (decodes(middle)) good = middle;
      else bad = middle;
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, good), { stream: true });
  }

  private parse(text: string): void {
    if (text === '') return;
    const bytes = Buffer.byteLength(text);
    this.piece = text;
    this.pieceByte = this.fed;
    this.pieceAscii = bytes === text.length;
    this.gapFrom = 0;
    this.cursorChar = 0;
    this.cursorByte = this.fed;
    this.fed += bytes;
    this.saxes.write(text);
    this.checkReference();
    if (this.between && !this.done) this.endGap(text.length);
    this.pieceChar += text.length;
  }

  /**
   * saxes reads an entity or character reference up to its `;`, through `<` and later stanzas,
   * and only then says it is malformed: a stray `&` would make every later request wait for the
   * next `;`. What it has read of the reference so far (a field of saxes 6, checked by a test)
   * already says so when it holds a character no name or number can.
   */
  private checkReference(): void {
    const reference: unknown = (this.saxes as unknown as { entity?: unknown }).entity;
    if (typeof reference === 'string' && NOT_IN_REFERENCE.test(reference)) {
      stop('not-well-formed', 'the stream is not well-formed XML (disallowed character in entity name)');
    }
  }

  /**
   * Between top-level elements: the first non-whitespace character after the gap's start, up to
   * `end`, starts the next item.
   */
  private endGap(end: number): void {
    const rest = this.piece.slice(this.gapFrom, end);
    const first = rest.search(NOT_SPACE);
    if (first === -1) return;
    this.between = false;
    this.itemStart = this.byteAt(this.gapFrom + first);
  }

  /** The stream offset in bytes of the piece's character `index`; indexes asked for only grow. */
  private byteAt(index: number): number {
    if (this.pieceAscii) return this.pieceByte + index;
    this.cursorByte += Buffer.byteLength(this.piece.slice(this.cursorChar, index));
    this.cursorChar = index;
    return this.cursorByte;
  }

  /** Where saxes is now, as a character index in the piece. */
  private here(): number {
    return this.saxes.position - this.pieceChar;
  }

  private onOpenTagStart(): void {
    if (!this.streamOpen) return;
    if (this.open.length === 0 && this.between) this.endGap(this.here());
    if (this.open.length >= MAX_DEPTH) stop('policy-violation', `an element is nested more than ${MAX_DEPTH} deep`);
  }

  private onOpenTag(tag: SaxesTagNS): void {
    const attrs: Record<string, string> = {};
    const { attributes } = tag;
    for (const name in attributes) {
      const attribute = attributes[name]!;
      if (attribute.prefix === 'xmlns' || name === 'xmlns') {
        // saxes trims a namespace name; a URI has no spaces, so one that needs trimming would be
        // read as another namespace than the bytes say.
        if (attribute.value !== attribute.value.trim()) stop('not-well-formed', 'the stream declares a namespace name with surrounding spaces');
        continue;
      }
      attrs[name] = attribute.value;
    }
    if (!this.streamOpen) return this.onHeader(tag);
    if (this.open.length === 0 && tag.uri === NS_STREAMS && tag.local === 'stream') {
      stop('unsupported-stanza-type', 'the peer opened a second stream inside the stream');
    }
    const depth = this.open.length;
    if (depth === 0 || this.uris[depth - 1] !== tag.uri) attrs.xmlns = tag.uri;
    // The attributes object is the element's own: the constructor would copy it, key by key.
    const element = new xml.Element(tag.local);
    element.attrs = attrs;
    if (depth === 0) this.saxes.on('text', this.textHandler);
    else this.open[depth - 1]!.append(element);
    this.open.push(element);
    this.uris.push(tag.uri);
  }

  private onHeader(tag: SaxesTagNS): void {
    if (tag.local !== 'stream' || tag.uri !== NS_STREAMS) stop('not-well-formed', 'the peer did not open an XMPP stream');
    this.streamOpen = true;
    this.between = true;
    this.gapFrom = this.here();
    const { attributes } = tag;
    this.events.onOpen({ xmlns: attributes.xmlns?.value, id: attributes.id?.value, from: attributes.from?.value });
  }

  private onCloseTag(): void {
    const element = this.open.pop();
    if (element === undefined) {
      this.ended = true;
      this.events.onClose();
      throw new Stop(null);
    }
    this.uris.pop();
    if (this.open.length > 0) return;
    // The stanza is complete: nothing of it stays here, and text between stanzas is not kept.
    this.saxes.off('text');
    this.between = true;
    this.gapFrom = this.here();
    element.parent = null;
    this.events.onElement(element);
  }

  private onText(text: string): void {
    // Outside a stanza (CDATA between stanzas) the text is dropped.
    this.open[this.open.length - 1]?.t(text);
  }
}
