/** Why a script process was replaced: a small fixed set, fit for a metric label. */
export type RestartReason =
  /** The process exited on its own. */
  | 'exited'
  /** It held a request for the whole timeout without answering anything. */
  | 'timeout'
  /** It wrote while no request was outstanding (a banner, an extra answer). */
  | 'unsolicited-output'
  /** It answered something that is not an answer. */
  | 'bad-answer'
  /** Its output could not be split into answers at all. */
  | 'protocol-error'
  /** It could not be prepared (a pty that never switched to raw mode). */
  | 'not-ready'
  /** The program could not be run at all. */
  | 'cannot-start'
  /** Replaced on purpose by a rolling restart (counted by the pool). */
  | 'rolling';

/** Restarts in a row without an answer from which a script counts as failing (logged at error, unhealthy). */
export const FAILING_AFTER_RESTARTS = 3;
