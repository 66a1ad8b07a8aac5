import type { Failure, FailureReason } from '../core/failure.js';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/**
 * An error as it looks on the wire (RFC 6120 §8.3). `text` is shown to the requester, so it
 * must never contain request data.
 */
export class StanzaError extends Error {
  constructor(
    readonly type: StanzaErrorType,
    readonly condition: string,
    readonly text: string,
  ) {
    super(`${condition}: ${text}`);
    this.name = 'StanzaError';
  }
}

// Refusals the edge itself decides, before a request reaches the pool.
export const badRequest = (text: string) => new StanzaError('modify', 'bad-request', text);
export const forbidden = (text: string) => new StanzaError('auth', 'forbidden', text);
export const notImplemented = (text: string) => new StanzaError('cancel', 'feature-not-implemented', text);
export const unavailable = (text: string) => new StanzaError('wait', 'service-unavailable', text);

/**
 * The one table that says how each inner failure reads to the server. Everything that means
 * "no answer could be had" is of type `wait`: the shims report it as a temporary failure, never
 * as a wrong password.
 */
const FAILURE_CONDITIONS: Readonly<Record<FailureReason, readonly [StanzaErrorType, string]>> = {
  'too-large': ['modify', 'policy-violation'],
  unsupported: ['cancel', 'feature-not-implemented'],
  timeout: ['wait', 'remote-server-timeout'],
  crashed: ['wait', 'internal-server-error'],
  'bad-answer': ['wait', 'internal-server-error'],
  'backend-error': ['wait', 'internal-server-error'],
  'cannot-start': ['wait', 'internal-server-error'],
  overloaded: ['wait', 'resource-constraint'],
  stopping: ['wait', 'service-unavailable'],
};

export function stanzaErrorFor(failure: Failure): StanzaError {
  const [type, condition] = FAILURE_CONDITIONS[failure.reason];
  return new StanzaError(type, condition, failure.detail);
}
