import { Failure } from '../core/failure.js';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from './codec.js';

// Prosody mod_auth_external's line protocol: `kind:user:server[:password]\n`, answered `1` or `0`
// (and `scram:user:server:hash\n` answered `0` or `1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`).

/** Largest request line (without its newline), in bytes. */
const GENERIC_MAX_REQUEST_BYTES = 4000;

/** An answer line longer than this is not an answer but a script gone astray. */
const MAX_ANSWER_LINE_BYTES = 1024;

const NEWLINE = 0x0a;
const COLON = 0x3a;

function encodeGenericLine(line: string): Buffer {
  const length = Buffer.byteLength(line);
  if (length > GENERIC_MAX_REQUEST_BYTES) {
    throw new Failure('too-large', `request is ${length} bytes, the generic protocol allows ${GENERIC_MAX_REQUEST_BYTES}`);
  }
  const bytes = Buffer.allocUnsafe(length + 1);
  bytes.write(line, 0, 'utf8');
  bytes[length] = NEWLINE;
  return bytes;
}

/**
 * `1` or `0`, tolerating a trailing CR and trailing spaces; `1:` and credentials (checked
 * later, against the request); anything else is invalid.
 */
function parseGenericAnswerLine(line: Buffer): ScriptAnswer {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0d || line[end - 1] === 0x20)) end--;
  if (end > 2 && line[0] === 0x31 && line[1] === COLON) return { credentials: line.toString('latin1', 2, end) };
  if (end !== 1) return 'invalid';
  if (line[0] === 0x31) return true;
  if (line[0] === 0x30) return false;
  return 'invalid';
}

class GenericAnswerDecoder implements AnswerDecoder {
  private buffered: Buffer | null = null;

  get pending(): number {
    return this.buffered?.length ?? 0;
  }

  push(chunk: Buffer, onAnswer: (answer: ScriptAnswer) => void): void {
    let data = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    this.buffered = null;
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      onAnswer(nl - start > MAX_ANSWER_LINE_BYTES ? 'invalid' : parseGenericAnswerLine(data.subarray(start, nl)));
      start = nl + 1;
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

export const genericCodec: ScriptCodec = Object.freeze({
  name: 'generic' as const,
  tagged: false,
  scram: true,
  maxRequestBytes: GENERIC_MAX_REQUEST_BYTES,
  encode: (fields: string) => encodeGenericLine(fields),
  createDecoder: () => new GenericAnswerDecoder(),
});
