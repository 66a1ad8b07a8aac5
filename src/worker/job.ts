import type { AuthRequest } from '../auth-request.js';
import type { StanzaError } from '../stanza-error.js';

/** A request on its way through the pool: its bytes, its one deadline, and how to answer it. */
export interface Job {
  readonly request: AuthRequest;
  readonly payload: Buffer;
  /** On the performance.now() clock; set once when the request arrives and never extended. */
  readonly deadline: number;
  /** Called exactly once. */
  settle(outcome: boolean | StanzaError): void;
}
