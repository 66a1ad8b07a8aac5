import type { AuthRequest } from './auth-request.js';
import type { Outcome } from './failure.js';

/** A request on its way through the pool: its bytes, its current deadline, and how to answer it. */
export interface Job {
  readonly request: AuthRequest;
  /** `requestFields(request)`: kept so the worker can redact it from the script's stderr. */
  readonly fields: string;
  /** The request's id on the script's stdin (tagged protocol only): unique in the pool, never reused. */
  readonly tag?: string | undefined;
  /** The request as framed for the script (with its id, when tagged). */
  readonly payload: Buffer;
  /**
   * On the performance.now() clock: arrival plus the timeout, fixed for the request's whole
   * life. The wait for a process, the attempt on it and any retry all end by it. Whoever holds
   * the job enforces it; there is no timer per request.
   */
  readonly deadline: number;
  /** Set once the job has been moved off a lost process; it is not moved a second time. */
  retried: boolean;
  /** Called exactly once. */
  settle(outcome: Outcome): void;
}
