import type { AuthRequest } from '../core/auth-request.js';
import type { Outcome } from '../core/failure.js';

export type { Outcome };

/** A request on its way through the pool: its bytes, its current deadline, and how to answer it. */
export interface Job {
  readonly request: AuthRequest;
  /** `requestFields(request)`: kept so the worker can redact it from the script's stderr. */
  readonly fields: string;
  readonly payload: Buffer;
  /**
   * On the performance.now() clock. While queued: when it stops waiting for a free process.
   * Once written to a script: when that script must have answered. Whoever holds the job
   * enforces it; there is no timer per request.
   */
  deadline: number;
  /** Set once the job has been moved off a lost process; it is not moved a second time. */
  retried: boolean;
  /** Called exactly once. */
  settle(outcome: Outcome): void;
}
