import { Failure } from '../core/failure.js';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from './codec.js';

/**
 * The tagged line protocol: `ID:kind:user:server[:password]\n`, answered `ID:1`, `ID:0` or
 * `ID:E` ("my backend failed"), in any order (a `scram` request: `ID:0`, `ID:E` or
 * `ID:1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`). The id ties each answer to its request, so an
 * extra or late answer can never be taken for the answer to another request, and one process
 * can work on many requests at once.
 */

/** The same limit as the generic protocol, counted without the id. */
const TAGGED_MAX_REQUEST_BYTES = 4000;
/** 1 to 16 characters of [0-9a-z]. */
const TAGGED_ID = /^[0-9a-z]{1,16}$/;

/** An answer line longer than this is not an answer but a script gone astray. */
const MAX_ANSWER_LINE_BYTES = 1024;
const MAX_ID_CHARS = 16;
const NEWLINE = 0x0a;
const COLON = 0x3a;

function encodeTaggedLine(fields: string, id: string): Buffer {
  if (!TAGGED_ID.test(id)) throw new Error(`invalid request id for the tagged protocol: ${JSON.stringify(id)}`);
  const length = Buffer.byteLength(fields);
  if (length > TAGGED_MAX_REQUEST_BYTES) {
    throw new Failure('too-large', `request is ${length} bytes, the tagged protocol allows ${TAGGED_MAX_REQUEST_BYTES}`);
  }
  const bytes = Buffer.allocUnsafe(id.length + 1 + length + 1);
  bytes.write(id, 0, 'latin1');
  bytes[id.length] = COLON;
  bytes.write(fields, id.length + 1, 'utf8');
  bytes[bytes.length - 1] = NEWLINE;
  return bytes;
}

function isIdByte(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a);
}

/**
 * Reads one answer line (without its newline). A trailing CR and trailing spaces are tolerated,
 * as in the generic protocol. Returns undefined when the line does not start with a well-formed
 * id: such a line cannot be tied to any request. The line's text never goes into an error
 * message: a script that echoes its input would put a password there.
 */
function parseTaggedAnswerLine(line: Buffer): { id: string; answer: ScriptAnswer } | undefined {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0d || line[end - 1] === 0x20)) end--;
  let colon = 0;
  while (colon < end && colon <= MAX_ID_CHARS && isIdByte(line[colon]!)) colon++;
  if (colon === 0 || colon > MAX_ID_CHARS || colon >= end || line[colon] !== COLON) return undefined;
  const id = line.toString('latin1', 0, colon);
  if (end > colon + 3 && line[colon + 1] === 0x31 && line[colon + 2] === COLON) {
    return { id, answer: { credentials: line.toString('latin1', colon + 3, end) } };
  }
  if (end !== colon + 2) return { id, answer: 'invalid' };
  const value = line[colon + 1];
  const answer: ScriptAnswer = value === 0x31 ? true : value === 0x30 ? false : value === 0x45 ? 'backend-error' : 'invalid';
  return { id, answer };
}

class TaggedAnswerDecoder implements AnswerDecoder {
  private buffered: Buffer | null = null;

  get pending(): number {
    return this.buffered?.length ?? 0;
  }

  push(chunk: Buffer, onAnswer: (answer: ScriptAnswer, id?: string) => void): void {
    let data = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    this.buffered = null;
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      if (nl - start > MAX_ANSWER_LINE_BYTES) throw new FramingError(`script wrote an answer line of more than ${MAX_ANSWER_LINE_BYTES} bytes`);
      const parsed = parseTaggedAnswerLine(data.subarray(start, nl));
      if (parsed === undefined) throw new FramingError('script wrote a line that does not start with a request id (ID:1, ID:0 or ID:E expected)');
      start = nl + 1;
      onAnswer(parsed.answer, parsed.id);
    }
    if (start < data.length) {
      data = data.subarray(start);
      if (data.length > MAX_ANSWER_LINE_BYTES) {
        throw new FramingError(`script wrote more than ${MAX_ANSWER_LINE_BYTES} bytes without a newline`);
      }
      // Copy so a large chunk is not kept alive by a few trailing bytes.
      this.buffered = Buffer.from(data);
    }
  }
}

export const taggedCodec: ScriptCodec = Object.freeze({
  name: 'tagged' as const,
  tagged: true,
  scram: true,
  maxRequestBytes: TAGGED_MAX_REQUEST_BYTES,
  encode(fields: string, id?: string): Buffer {
    if (id === undefined) throw new Error('the tagged protocol needs a request id');
    return encodeTaggedLine(fields, id);
  },
  createDecoder: () => new TaggedAnswerDecoder(),
});
