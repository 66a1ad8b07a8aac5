/**
 * One answer read from a script: `1`/`0`; `'backend-error'` (tagged `ID:E`: the script's own
 * backend failed); `{ credentials }`, the text after `1:` (SCRAM credentials, checked against
 * the request they answer by `readAnswer`); or `'invalid'`, a line that is none of these.
 */
export type ScriptAnswer = boolean | 'backend-error' | 'invalid' | CredentialsText;

/** What followed `1:` on an answer line: not yet checked, and secret (it holds the keys). */
export interface CredentialsText {
  readonly credentials: string;
}

/** Thrown when a script's output can no longer be split into answers: its process must go. */
export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

export interface AnswerDecoder {
  /**
   * Feeds bytes as they arrive; calls `onAnswer` for each complete answer, with the request id
   * it names (tagged protocol only; the classic protocols answer in order and carry none).
   * Throws FramingError.
   */
  push(chunk: Buffer, onAnswer: (answer: ScriptAnswer, id?: string) => void): void;
  /** Bytes received that are not yet a whole answer. */
  readonly pending: number;
}

export interface ScriptCodec {
  readonly name: 'generic' | 'ejabberd' | 'tagged';
  /**
   * Requests and answers carry an id, so answers may come in any order and are matched by id.
   * Otherwise answers come in the order of the requests.
   */
  readonly tagged: boolean;
  /** The protocol has a form for `scram` requests and their credential answers. */
  readonly scram: boolean;
  /** Largest request (its fields, without any id or framing) the protocol can carry, in bytes. */
  readonly maxRequestBytes: number;
  /**
   * Frames a request's fields (`requestFields`) for the script, with the request's id when the
   * protocol is tagged. Throws a `too-large` Failure when they do not fit the protocol.
   */
  encode(fields: string, id?: string): Buffer;
  createDecoder(): AnswerDecoder;
}
