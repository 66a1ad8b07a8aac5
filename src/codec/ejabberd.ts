import { Failure } from '../core/failure.js';
import { FramingError, type AnswerDecoder, type ScriptAnswer, type ScriptCodec } from './codec.js';

// ejabberd extauth: 2-byte big-endian length, then the fields; answered `00 02 00 0X`.

/** Largest request the 2-byte length can announce, in bytes. */
const EJABBERD_MAX_REQUEST_BYTES = 0xffff;

function encodeEjabberdFields(fields: string): Buffer {
  const length = Buffer.byteLength(fields);
  if (length > EJABBERD_MAX_REQUEST_BYTES) {
    throw new Failure('too-large', `request is ${length} bytes, the ejabberd protocol allows ${EJABBERD_MAX_REQUEST_BYTES}`);
  }
  const frame = Buffer.allocUnsafe(length + 2);
  frame.writeUInt16BE(length, 0);
  frame.write(fields, 2, 'utf8');
  return frame;
}

/**
 * Accepts nothing but `00 02 00 00` and `00 02 00 01`. Each byte is checked as it arrives so
 * a script that wrote anything else is caught at once, not after it wrote a whole bogus frame.
 */
class EjabberdAnswerDecoder implements AnswerDecoder {
  private seen = 0;

  get pending(): number {
    return this.seen;
  }

  push(chunk: Buffer, onAnswer: (answer: ScriptAnswer) => void): void {
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      switch (this.seen) {
        case 0:
        case 2:
          if (byte !== 0x00) throw this.unexpected(byte);
          this.seen++;
          break;
        case 1:
          if (byte !== 0x02) throw this.unexpected(byte);
          this.seen++;
          break;
        default:
          if (byte !== 0x00 && byte !== 0x01) throw this.unexpected(byte);
          this.seen = 0;
          onAnswer(byte === 0x01);
      }
    }
  }

  private unexpected(byte: number): FramingError {
    const position = this.seen;
    this.seen = 0;
    return new FramingError(
      `script answered byte 0x${byte.toString(16).padStart(2, '0')} at offset ${position} of a frame; expected 00 02 00 00 or 00 02 00 01`,
    );
  }
}

export const ejabberdCodec: ScriptCodec = Object.freeze({
  name: 'ejabberd' as const,
  tagged: false,
  // Its answer is a fixed 4-byte frame: there is no room for credentials.
  scram: false,
  maxRequestBytes: EJABBERD_MAX_REQUEST_BYTES,
  encode: (fields: string) => encodeEjabberdFields(fields),
  createDecoder: () => new EjabberdAnswerDecoder(),
});
