export interface BackoffPolicy {
  readonly baseMs: number;
  readonly capMs: number;
  /** 0: exact delays; 0.5: each delay is drawn from [half, whole] ("equal jitter"). */
  readonly jitter: number;
}

/** Delay before retry number `attempt` (0-based): doubling from `baseMs`, never above `capMs`. */
export function backoffDelay(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const exact = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(exact * (1 - policy.jitter * random()));
}

export const RECONNECT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, capMs: 30_000, jitter: 0.5 });
/** The first restart is immediate: a script killed for a timeout should be back at once. */
const RESTART_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 100, capMs: 5_000, jitter: 0.2 });

export function restartDelay(failures: number, random: () => number = Math.random): number {
  return failures === 0 ? 0 : backoffDelay(RESTART_BACKOFF, failures - 1, random);
}
