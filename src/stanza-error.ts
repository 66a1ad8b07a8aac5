/**
 * An error that already knows how it must look on the wire (RFC 6120 §8.3).
 * Raised where the failure is detected; the IQ layer only serialises it.
 * `text` is shown to the requester, so it must never contain request data.
 */
export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

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

export const badRequest = (text: string) => new StanzaError('modify', 'bad-request', text);
export const forbidden = (text: string) => new StanzaError('auth', 'forbidden', text);
export const policyViolation = (text: string) => new StanzaError('modify', 'policy-violation', text);
export const timedOut = (text: string) => new StanzaError('wait', 'remote-server-timeout', text);
export const scriptFailure = (text: string) => new StanzaError('wait', 'internal-server-error', text);
export const overloaded = (text: string) => new StanzaError('wait', 'resource-constraint', text);
export const unavailable = (text: string) => new StanzaError('wait', 'service-unavailable', text);
export const notImplemented = (text: string) => new StanzaError('cancel', 'feature-not-implemented', text);
