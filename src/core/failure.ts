import type { ScramCredentials } from './scram-credentials.js';

/**
 * Why a request could not be answered with the script's yes or no. The inner layers (codec,
 * pool, worker) settle a request with one of these; only the XMPP edge decides how each looks
 * on the wire, in one table (xmpp/stanza-error.ts). ejabberd splits it the same way: its
 * extauth worker returns `{error, Reason}` and the auth module decides.
 */
export type FailureReason =
  /** The request does not fit the script protocol. */
  | 'too-large'
  /** The script protocol has no form for this kind of request (`scram` over `ejabberd`). */
  | 'unsupported'
  /** No answer (or no free process) before the request's deadline. */
  | 'timeout'
  /** The script exited, or was restarted, before it answered. */
  | 'crashed'
  /** The script answered something that is not an answer. */
  | 'bad-answer'
  /** The script said its own backend failed (tagged protocol `ID:E`). */
  | 'backend-error'
  /** The program cannot be run at all. */
  | 'cannot-start'
  /** Too many requests are waiting. */
  | 'overloaded'
  /** The component is shutting down. */
  | 'stopping';

export class Failure extends Error {
  constructor(
    readonly reason: FailureReason,
    /** Said to the requester as is: never holds request data. */
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'Failure';
  }
}

/** What a request ends with: the script's answer (yes, no, or a user's SCRAM credentials), or why there is none. */
export type Outcome = boolean | ScramCredentials | Failure;

/** Outages, as opposed to refusals of the request itself: what a credential cache may stand in for. */
export function isOutage(failure: Failure): boolean {
  return (
    failure.reason === 'timeout' ||
    failure.reason === 'crashed' ||
    failure.reason === 'bad-answer' ||
    failure.reason === 'backend-error' ||
    failure.reason === 'cannot-start'
  );
}
