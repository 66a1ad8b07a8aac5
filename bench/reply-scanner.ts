// Reads the component's replies cheaply: no XML parser, just the few attributes the load
// generator needs from each top-level `<iq>`. The component writes replies in a fixed shape
// (src/xmpp/replies.ts), so scanning for `id='…'`, `type='error'` and `result='…'` is enough.

/** What a reply said: the script's 0, its 1, or a stanza error. */
export const Outcome = { Refused: 0, Accepted: 1, Error: 2 } as const;
export type Outcome = (typeof Outcome)[keyof typeof Outcome];

/**
 * Calls `onReply(id, outcome)` for every complete `<iq>` in `text` from `from` on, and returns
 * where the first incomplete one starts (or the end): keep `text.slice(returned)` for the next
 * chunk. Ids are the numeric ids the generator sent; anything else is reported as NaN.
 */
export function scanReplies(text: string, from: number, onReply: (id: number, outcome: Outcome) => void): number {
  let pos = from;
  for (;;) {
    const start = text.indexOf('<iq', pos);
    if (start < 0) return Math.max(pos, text.length - 2); // keep a possibly split "<i"
    const headEnd = text.indexOf('>', start);
    if (headEnd < 0) return start;
    let end: number;
    if (text.charCodeAt(headEnd - 1) === 0x2f /* '/' */) end = headEnd + 1;
    else {
      const close = text.indexOf('</iq>', headEnd);
      if (close < 0) return start;
      end = close + 5;
    }
    onReply(attributeNumber(text, start, headEnd, ' id='), outcomeOf(text, start, headEnd, end));
    pos = end;
  }
}

function outcomeOf(text: string, start: number, headEnd: number, end: number): Outcome {
  const type = text.indexOf(' type=', start);
  if (type > 0 && type < headEnd && text.startsWith('error', type + 7)) return Outcome.Error;
  const result = text.indexOf(' result=', headEnd);
  if (result < 0 || result > end) return Outcome.Error;
  return text.charCodeAt(result + 9) === 0x74 /* 't' */ ? Outcome.Accepted : Outcome.Refused;
}

function attributeNumber(text: string, start: number, headEnd: number, name: string): number {
  const at = text.indexOf(name, start);
  if (at < 0 || at > headEnd) return Number.NaN;
  const valueStart = at + name.length + 1;
  const quote = text[valueStart - 1]!;
  const valueEnd = text.indexOf(quote, valueStart);
  if (valueEnd < 0 || valueEnd > headEnd) return Number.NaN;
  if (valueEnd === valueStart) return Number.NaN;
  let value = 0;
  for (let i = valueStart; i < valueEnd; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return Number.NaN;
    value = value * 10 + digit;
  }
  return value;
}
