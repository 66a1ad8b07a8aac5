/**
 * Remembers what recent requests carried, so it can be cut out of anything the script prints:
 * the exact text, and the forms a script's logging usually turns it into -- Python `repr()` of
 * a str or of bytes, JSON, percent-encoding (`%20` or `+`, either hex case), backslash escapes
 * (`\x..`, `\u....`, `\U........`, a backslash before a character), base64 or base64url (also
 * where the secret sits inside a longer encoded text such as `Basic base64(user:password)`), and
 * its UTF-8 bytes read as Latin-1 or Windows-1252 (`pä€ss` printed as `pÃ¤â\x82¬ss` by a script
 * that decoded its input with the wrong charset), in any of the escaped forms too.
 *
 * The daemon's script stderr and `check-script`'s output both go through this one redaction.
 *
 * Remembering is a store into a ring, nothing more. The escaped forms are found by decoding the
 * line (a few readings of its escapes) and looking for each secret's text and wrong-charset
 * texts in each reading; those and the base64 forms are worked out only when a line arrives
 * (stderr is rare and rate-limited) and kept until the ring slot is reused.
 */
/**
 * Masks every run of 16 or more base64 or hex characters, the shape of a SCRAM key in any of
 * its usual spellings. For stderr written while a scram request is held: a script usually logs
 * what it fetched before it answers, when the keys are not yet known to be cut out exactly.
 */
export function maskKeyLike(line: string): string {
  return line.replace(/[A-Za-z0-9+/=_-]{16,}/g, '[redacted]');
}

export class SecretMemory {
  private readonly ring: string[];
  private readonly forms: Array<Forms | undefined>;
  private next = 0;

  constructor(size: number) {
    this.ring = new Array<string>(size).fill('');
    this.forms = new Array<Forms | undefined>(size).fill(undefined);
  }

  remember(secret: string): void {
    if (secret === '') return;
    this.ring[this.next] = secret;
    this.forms[this.next] = undefined;
    this.next = (this.next + 1) % this.ring.length;
  }

  /**
   * A binary secret (a SCRAM key), given as the base64 it arrived in: that text and the forms
   * a script's logging turns its bytes into (hex in either case, base64url, and the bytes as
   * code points, which is how a Python bytes repr `b'\x8f...'` reads once its escapes are decoded).
   */
  rememberBinary(base64: string): void {
    const bytes = Buffer.from(base64, 'base64');
    const hex = bytes.toString('hex');
    for (const form of [base64, hex, hex.toUpperCase(), bytes.toString('base64url'), bytes.toString('latin1')]) this.remember(form);
  }

  /** The text with every remembered secret, in any known form, replaced by `[redacted]`. */
  redact(text: string): string {
    const spans = this.find(text);
    let result = '';
    let copied = 0;
    for (const [start, end] of spans) {
      result += text.slice(copied, start) + REDACTED;
      copied = end;
    }
    return result + text.slice(copied);
  }

  /**
   * Raw output (a script's stdout, bytes that may not be text at all), each byte of a secret
   * in any known form replaced by `*`, so that a hex dump keeps its length. Searched byte for
   * byte (the secret's own UTF-8 bytes are its Latin-1 form) and as UTF-8 text.
   */
  redactBytes(bytes: Buffer): Buffer {
    const view = utf8View(bytes);
    const spans = [...this.find(bytes.toString('latin1')), ...this.find(view.text).map(([start, end]) => view.span(start, end - start))];
    if (spans.length === 0) return bytes;
    const copy = Buffer.from(bytes);
    for (const [start, end] of spans) copy.fill(0x2a, start, end);
    return copy;
  }

  /** Where secrets are, sorted, overlapping or touching finds (a request line and its password) merged. */
  private find(text: string): Array<[number, number]> {
    const spans: Array<[number, number]> = [];
    const readings = readingsOf(text);
    for (let slot = 0; slot < this.ring.length; slot++) {
      const secret = this.ring[slot]!;
      if (secret === '') continue;
      const forms = (this.forms[slot] ??= formsOf(secret));
      for (const reading of readings) {
        for (const form of forms.texts) findAll(reading.text, form, (at) => spans.push(reading.span(at, form.length)));
      }
      for (const form of forms.base64) findAll(text, form, (at) => spans.push([at, at + form.length]));
    }
    if (spans.length === 0) return spans;
    spans.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const [start, end] of spans) {
      const last = merged.at(-1);
      if (last !== undefined && start < last[1]) last[1] = Math.max(last[1], end);
      else merged.push([start, end]);
    }
    return merged;
  }
}

interface Forms {
  /** The secret and its wrong-charset readings: looked for in every reading of a line. */
  readonly texts: readonly string[];
  /** Base64 and base64url fragments: looked for in the line as it is. */
  readonly base64: readonly string[];
}

function formsOf(secret: string): Forms {
  const bytes = Buffer.from(secret, 'utf8');
  const texts = new Set([secret, bytes.toString('latin1'), windows1252(bytes)]);
  return { texts: [...texts], base64: base64Forms(secret) };
}

/** Windows-1252's characters for 0x80-0x9F (the five it leaves undefined stay C1 controls, as WHATWG reads them). */
const CP1252_C1 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

// Hand-written: Node's TextDecoder reads 'windows-1252' as Latin-1.
function windows1252(bytes: Buffer): string {
  let text = '';
  for (const byte of bytes) text += byte >= 0x80 && byte <= 0x9f ? CP1252_C1[byte - 0x80] : String.fromCharCode(byte);
  return text;
}

/**
 * The bytes as UTF-8 text, with the byte span each UTF-16 unit came from; a byte that starts
 * no valid sequence reads as U+FFFD on its own.
 */
function utf8View(bytes: Buffer): { text: string; span(at: number, length: number): [number, number] } {
  let text = '';
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i]!;
    const size = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
    let chars = size === 0 || i + size > bytes.length ? '\ufffd' : bytes.toString('utf8', i, i + size);
    let end = i + size;
    // Not one whole code point (a bad continuation byte, an overlong or surrogate form): one byte only.
    if (size === 0 || chars.includes('\ufffd') || [...chars].length !== 1) {
      chars = '\ufffd';
      end = i + 1;
    }
    for (let k = 0; k < chars.length; k++) {
      starts.push(i);
      ends.push(end);
    }
    text += chars;
    i = end;
  }
  return { text, span: (at, length) => [starts[at]!, ends[at + length - 1]!] };
}

const REDACTED = '[redacted]';

function findAll(haystack: string, needle: string, found: (at: number) => void): void {
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) found(at);
}

/** Shorter base64 fragments would match ordinary words. */
const MIN_BASE64_CHARS = 6;

/** The secret's base64 and base64url text at each alignment, as far as it does not depend on its neighbours. */
function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = new Set<string>();
  for (let offset = 0; offset < 3; offset++) {
    const core = alignedBase64(bytes, offset);
    if (core.length < MIN_BASE64_CHARS) continue;
    forms.add(core);
    forms.add(core.replaceAll('+', '-').replaceAll('/', '_'));
  }
  forms.delete(secret);
  return [...forms];
}

/**
 * The base64 characters that encode `bytes` whatever surrounds them, when they start `offset`
 * bytes after a 3-byte boundary of the encoded text: leading and trailing characters that
 * also carry bits of the neighbouring bytes are left out.
 */
function alignedBase64(bytes: Buffer, offset: number): string {
  const total = offset + bytes.length;
  const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
  return encoded.slice(Math.ceil((offset * 8) / 6), Math.floor((total * 8) / 6));
}

/** One reading of a line: its text with escapes decoded, and where each character came from. */
interface Reading {
  readonly text: string;
  /** The span of the original line that `length` characters at `at` of this reading came from. */
  span(at: number, length: number): [number, number];
}

type Token =
  | { kind: 'char'; unit: number; start: number; end: number }
  | { kind: 'xbyte' | 'pct'; value: number; start: number; end: number }
  | { kind: 'plus'; start: number; end: number };

interface ReadingMode {
  /** `\xHH` is a code point (Python str repr) or a UTF-8 byte (bytes repr, C). */
  xAsByte: boolean;
  /** `%HH` is decoded (a UTF-8 byte) or left as text. */
  percent: boolean;
  /** `+` is a space (form encoding) or itself. */
  plusAsSpace: boolean;
}

/**
 * The line as it is, and as each plausible decoding of its escapes would read it (only those
 * that differ): backslash escapes always decoded; `\xHH` as a code point or a UTF-8 byte;
 * `%HH` decoded or not; `+` as a space or not.
 */
function readingsOf(text: string): Reading[] {
  const identity: Reading = { text, span: (at, length) => [at, at + length] };
  if (!/[\\%+]/.test(text)) return [identity];
  const tokens = tokenize(text);
  const hasX = tokens.some((t) => t.kind === 'xbyte');
  const hasPct = tokens.some((t) => t.kind === 'pct');
  const hasPlus = tokens.some((t) => t.kind === 'plus');
  const readings = [identity];
  const seen = new Set([text]);
  for (const xAsByte of hasX ? [false, true] : [false])
    for (const percent of hasPct ? [false, true] : [false])
      for (const plusAsSpace of hasPlus ? [false, true] : [false]) {
        const reading = decode(text, tokens, { xAsByte, percent, plusAsSpace });
        if (!seen.has(reading.text)) {
          seen.add(reading.text);
          readings.push(reading);
        }
      }
  return readings;
}

const HEX = /^[0-9a-fA-F]+$/;

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const hexAt = (from: number, width: number): number | null => {
    const digits = text.slice(from, from + width);
    return digits.length === width && HEX.test(digits) ? parseInt(digits, 16) : null;
  };
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */ && i + 1 < text.length) {
      const next = text[i + 1];
      let value: number | null;
      if (next === 'x' && (value = hexAt(i + 2, 2)) !== null) {
        tokens.push({ kind: 'xbyte', value, start: i, end: i + 4 });
        i += 4;
      } else if (next === 'u' && (value = hexAt(i + 2, 4)) !== null) {
        tokens.push({ kind: 'char', unit: value, start: i, end: i + 6 });
        i += 6;
      } else if (next === 'U' && (value = hexAt(i + 2, 8)) !== null && value <= 0x10ffff) {
        pushCodePoint(tokens, value, i, i + 10);
        i += 10;
      } else if (next === 'u' && text[i + 2] === '{' && /^\{([0-9a-fA-F]{1,6})\}/.test(text.slice(i + 2, i + 10))) {
        const close = text.indexOf('}', i + 3);
        const cp = parseInt(text.slice(i + 3, close), 16);
        if (cp <= 0x10ffff) pushCodePoint(tokens, cp, i, close + 1);
        i = close + 1;
      } else {
        // A backslash before any other character stands for that character (\\, \', \", \/ ...).
        tokens.push({ kind: 'char', unit: text.charCodeAt(i + 1), start: i, end: i + 2 });
        i += 2;
      }
    } else if (c === 0x25 /* % */ && hexAt(i + 1, 2) !== null) {
      tokens.push({ kind: 'pct', value: hexAt(i + 1, 2)!, start: i, end: i + 3 });
      i += 3;
    } else if (c === 0x2b /* + */) {
      tokens.push({ kind: 'plus', start: i, end: i + 1 });
      i += 1;
    } else {
      tokens.push({ kind: 'char', unit: c, start: i, end: i + 1 });
      i += 1;
    }
  }
  return tokens;
}

function pushCodePoint(tokens: Token[], cp: number, start: number, end: number): void {
  const chars = String.fromCodePoint(cp);
  for (let k = 0; k < chars.length; k++) tokens.push({ kind: 'char', unit: chars.charCodeAt(k), start, end });
}

function decode(text: string, tokens: readonly Token[], mode: ReadingMode): Reading {
  const units: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  const emit = (unit: number, start: number, end: number) => {
    units.push(unit);
    starts.push(start);
    ends.push(end);
  };
  const isByte = (t: Token | undefined): t is Extract<Token, { value: number }> =>
    t !== undefined && ((t.kind === 'xbyte' && mode.xAsByte) || (t.kind === 'pct' && mode.percent));
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind === 'char') emit(t.unit, t.start, t.end);
    else if (t.kind === 'plus') emit(mode.plusAsSpace ? 0x20 : 0x2b, t.start, t.end);
    else if (t.kind === 'pct' && !mode.percent) for (let k = t.start; k < t.end; k++) emit(text.charCodeAt(k), k, k + 1);
    else if (t.kind === 'xbyte' && !mode.xAsByte) emit(t.value, t.start, t.end);
    else {
      // A UTF-8 sequence spelled as byte escapes; a byte that starts none stands for itself.
      const lead = t.value;
      const extra = lead >= 0xf0 && lead < 0xf8 ? 3 : lead >= 0xe0 ? 2 : lead >= 0xc0 ? 1 : 0;
      let cp = extra === 3 ? lead & 0x07 : extra === 2 ? lead & 0x0f : extra === 1 ? lead & 0x1f : lead;
      let ok = extra > 0;
      for (let k = 1; ok && k <= extra; k++) {
        const next = tokens[i + k];
        if (!isByte(next) || (next.value & 0xc0) !== 0x80) ok = false;
        else cp = (cp << 6) | (next.value & 0x3f);
      }
      if (ok && cp <= 0x10ffff) {
        const end = tokens[i + extra]!.end;
        const chars = String.fromCodePoint(cp);
        for (let k = 0; k < chars.length; k++) emit(chars.charCodeAt(k), t.start, end);
        i += extra;
      } else emit(lead, t.start, t.end);
    }
  }
  return {
    text: fromUnits(units),
    span: (at, length) => [starts[at]!, ends[at + length - 1]!],
  };
}

function fromUnits(units: readonly number[]): string {
  let text = '';
  for (let i = 0; i < units.length; i += 4096) text += String.fromCharCode(...units.slice(i, i + 4096));
  return text;
}
