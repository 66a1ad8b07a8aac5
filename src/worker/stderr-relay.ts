export interface StderrRelayOptions {
  readonly maxLineChars: number;
  readonly burst: number;
  readonly linesPerSecond: number;
  readonly redact: (line: string) => string;
  readonly emit: (line: string) => void;
  readonly suppressed: (count: number) => void;
  readonly now?: () => number;
}

const MAX_PARTIAL_CHARS = 8192;

/**
 * Turns a script's stderr into log lines a person can use without letting a chatty or hostile
 * script flood the log or leak what it was sent: lines are cut to a maximum length, limited
 * to a burst and then a steady rate, and passed through `redact` before they are logged.
 */
export class StderrRelay {
  private partial = '';
  /** Inside a line too long to keep: drop it up to its newline, since any piece could hold half a secret. */
  private skipping = false;
  private tokens: number;
  private refilledAt: number;
  private dropped = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly options: StderrRelayOptions) {
    this.tokens = options.burst;
    this.refilledAt = this.now();
  }

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.skipping && lines.length > 0) {
      lines.shift();
      this.skipping = false;
    }
    if (this.skipping) {
      this.partial = '';
      return;
    }
    for (const line of lines) this.relay(line);
    if (this.partial.length > MAX_PARTIAL_CHARS) {
      this.partial = '';
      this.skipping = true;
      this.relay(`[a line of more than ${MAX_PARTIAL_CHARS} characters was dropped]`);
    }
  }

  /** Logs what is left when the stream ends, and how much was held back. */
  flush(): void {
    if (this.partial !== '' && !this.skipping) this.relay(this.partial);
    this.partial = '';
    this.skipping = false;
    this.reportDropped();
  }

  private reportDropped(): void {
    clearTimeout(this.reportTimer);
    if (this.dropped > 0) {
      this.options.suppressed(this.dropped);
      this.dropped = 0;
    }
  }

  private relay(rawLine: string): void {
    const line = rawLine.replace(/\r$/, '');
    if (line === '') return;
    if (!this.take()) {
      // Say how much was held back even if the script goes quiet afterwards.
      if (this.dropped++ === 0) this.reportTimer = setTimeout(() => this.reportDropped(), 1000).unref();
      return;
    }
    this.reportDropped();
    // Redact before cutting, so a secret is never half-shown at the cut.
    const clean = this.options.redact(line);
    const { maxLineChars } = this.options;
    this.options.emit(clean.length > maxLineChars ? `${clean.slice(0, maxLineChars)}… (${clean.length} chars)` : clean);
  }

  private take(): boolean {
    const now = this.now();
    const { burst, linesPerSecond } = this.options;
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * linesPerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }
}

/**
 * Remembers what recent requests carried, so it can be cut out of anything the script prints:
 * the exact text, and the forms a script's logging usually turns it into -- Python `repr()` of
 * a str or of bytes, JSON, percent-encoding (`%20` or `+`, either hex case), backslash escapes
 * (`\x..`, `\u....`, `\U........`, a backslash before a character), its UTF-8 bytes read as Latin-1,
 * and base64 or base64url, also
 * where the secret sits inside a longer encoded text such as `Basic base64(user:password)`.
 *
 * Remembering is a store into a ring, nothing more. The escaped forms are found by decoding the
 * line (a few readings of its escapes) and looking for the secrets' exact text in each reading;
 * base64 forms are worked out only when a line arrives (stderr is rare and rate-limited) and
 * kept until the ring slot is reused.
 */
export class SecretMemory {
  private readonly ring: string[];
  private readonly base64: Array<readonly string[] | undefined>;
  private next = 0;

  constructor(size: number) {
    this.ring = new Array<string>(size).fill('');
    this.base64 = new Array<readonly string[] | undefined>(size).fill(undefined);
  }

  remember(secret: string): void {
    if (secret === '') return;
    this.ring[this.next] = secret;
    this.base64[this.next] = undefined;
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

  redact(text: string): string {
    const spans: Array<[number, number]> = [];
    const readings = readingsOf(text);
    for (let slot = 0; slot < this.ring.length; slot++) {
      const secret = this.ring[slot]!;
      if (secret === '') continue;
      for (const reading of readings) findAll(reading.text, secret, (at) => spans.push(reading.span(at, secret.length)));
      const encoded = (this.base64[slot] ??= encodedForms(secret));
      for (const form of encoded) findAll(text, form, (at) => spans.push([at, at + form.length]));
    }
    if (spans.length === 0) return text;
    // Overlapping or touching finds (a request line and the password inside it) become one.
    spans.sort((a, b) => a[0] - b[0]);
    let result = '';
    let copied = 0;
    for (let i = 0; i < spans.length; ) {
      const start = spans[i]![0];
      let end = spans[i]![1];
      for (i++; i < spans.length && spans[i]![0] < end; i++) end = Math.max(end, spans[i]![1]);
      result += text.slice(copied, start) + REDACTED;
      copied = end;
    }
    return result + text.slice(copied);
  }
}

const REDACTED = '[redacted]';

/**
 * Masks every run of 16 or more base64 or hex characters, the shape of a SCRAM key in any of
 * its usual spellings. For stderr written while a scram request is held: a script usually logs
 * what it fetched before it answers, when the keys are not yet known to be cut out exactly.
 */
export function maskKeyLike(line: string): string {
  return line.replace(/[A-Za-z0-9+/=_-]{16,}/g, REDACTED);
}

function findAll(haystack: string, needle: string, found: (at: number) => void): void {
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) found(at);
}

/** Shorter base64 fragments would match ordinary words. */
const MIN_BASE64_CHARS = 6;

/**
 * The secret's base64 forms, and its UTF-8 bytes read as Latin-1 (mojibake), which is what a
 * script that decodes its input with the wrong charset prints.
 */
function encodedForms(secret: string): string[] {
  const forms = base64Forms(secret);
  const mojibake = Buffer.from(secret, 'utf8').toString('latin1');
  if (mojibake !== secret) forms.push(mojibake);
  return forms;
}

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
