/** One answer read from a script: `1`/`0`, or a line that is neither (generic only). */
export type ScriptAnswer = boolean | 'invalid';

/** Thrown when a script's output can no longer be split into answers: its process must go. */
export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

export interface AnswerDecoder {
  /** Feeds bytes as they arrive; calls `onAnswer` for each complete answer. Throws FramingError. */
  push(chunk: Buffer, onAnswer: (answer: ScriptAnswer) => void): void;
  /** Bytes received that are not yet a whole answer. */
  readonly pending: number;
}

export interface ScriptCodec {
  readonly name: 'generic' | 'ejabberd';
  /** Largest request payload the protocol can carry, in bytes. */
  readonly maxRequestBytes: number;
  /**
   * Frames a request's fields (`requestFields`) for the script. Throws a `too-large` Failure
   * when they do not fit the protocol.
   */
  encode(fields: string): Buffer;
  createDecoder(): AnswerDecoder;
}
