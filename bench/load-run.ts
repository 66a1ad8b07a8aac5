// The bookkeeping of one measured run, shared by the load generators: a window of outstanding
// requests, bounded in count and in time, and the latency of every answer.
import { latencySummary } from './stats.js';
import { Outcome } from './reply-scanner.js';

export interface RunLimits {
  /** Requests to send at most. */
  maxRequests: number;
  /** Stop sending after this long. */
  durationMs: number;
  /** Requests outstanding at once at most. */
  window: number;
}

export interface RunCounts {
  sent: number;
  completed: number;
  accepted: number;
  refused: number;
  errors: number;
  /** Sent but never answered (the run gave up waiting). */
  lost: number;
  /** From the first request to when sending stopped. */
  elapsedMs: number;
  /** Answers per second while sending: answers received before sending stopped / elapsedMs. */
  rate: number;
  p50Ms: number;
  p99Ms: number;
}

export class LoadRun {
  sent = 0;
  completed = 0;
  private accepted = 0;
  private refused = 0;
  private errors = 0;
  private completedAtStop = 0;
  readonly startedAt = performance.now();
  private stoppedAt: number | null = null;
  private lastAnswerAt = this.startedAt;
  private wake: (() => void) | null = null;

  constructor(
    private readonly limits: RunLimits,
    /** Where latencies go; at least maxRequests long. */
    private readonly latencies: Float64Array,
  ) {
    if (latencies.length < limits.maxRequests) throw new Error('latency buffer too small');
  }

  get stopped(): boolean {
    return this.stoppedAt !== null;
  }

  /** Sending is over and every request sent has its answer. */
  get drained(): boolean {
    return this.stopped && this.completed === this.sent;
  }

  /** How many requests may be sent now (0 once the run has stopped sending). */
  room(now = performance.now()): number {
    if (this.stoppedAt === null && (this.sent >= this.limits.maxRequests || now - this.startedAt >= this.limits.durationMs)) this.stop(now);
    if (this.stoppedAt !== null) return 0;
    return Math.min(this.limits.window - (this.sent - this.completed), this.limits.maxRequests - this.sent);
  }

  /** Stops sending (time is up, or the count is reached). */
  stop(now = performance.now()): void {
    if (this.stoppedAt !== null) return;
    this.stoppedAt = now;
    this.completedAtStop = this.completed;
  }

  noteSent(count: number): void {
    this.sent += count;
  }

  /** An answer arrived at `now` to a request sent at `sentAt`. */
  noteAnswer(now: number, sentAt: number, outcome: Outcome): void {
    this.latencies[this.completed++] = now - sentAt;
    this.lastAnswerAt = now;
    if (outcome === Outcome.Accepted) this.accepted++;
    else if (outcome === Outcome.Refused) this.refused++;
    else this.errors++;
  }

  /** Call when answers arrived (or the connection went away): wakes `finished()`. */
  poke(): void {
    this.wake?.();
  }

  /**
   * Resolves once sending has stopped (time up or count reached) and every answer is in -- or
   * `drainTimeoutMs` after the stop, or as soon as `alive()` says the other end is gone.
   */
  async finished(drainTimeoutMs: number, alive: () => boolean = () => true): Promise<void> {
    const stopTimer = setTimeout(
      () => {
        this.stop();
        this.poke();
      },
      Math.max(0, this.startedAt + this.limits.durationMs - performance.now()),
    );
    try {
      let drainDeadline = Number.POSITIVE_INFINITY;
      while (!this.drained && alive()) {
        if (this.stopped && drainDeadline === Number.POSITIVE_INFINITY) drainDeadline = performance.now() + drainTimeoutMs;
        const remaining = drainDeadline - performance.now();
        if (remaining <= 0) return;
        await new Promise<void>((resolve) => {
          const timer = remaining === Number.POSITIVE_INFINITY ? undefined : setTimeout(resolve, remaining);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    } finally {
      clearTimeout(stopTimer);
    }
  }

  counts(): RunCounts {
    const stoppedAt = this.stoppedAt ?? performance.now();
    const elapsedMs = stoppedAt - this.startedAt;
    // A run stopped by its count has sent everything: then the drain belongs to it as well.
    const answered = this.sent >= this.limits.maxRequests ? this.completed : this.completedAtStop;
    const countedUntil = this.sent >= this.limits.maxRequests ? this.lastAnswerAt : stoppedAt;
    const { p50, p99 } = latencySummary(this.latencies, this.completed);
    return {
      sent: this.sent,
      completed: this.completed,
      accepted: this.accepted,
      refused: this.refused,
      errors: this.errors,
      lost: this.sent - this.completed,
      elapsedMs,
      rate: (answered * 1000) / (countedUntil - this.startedAt),
      p50Ms: p50,
      p99Ms: p99,
    };
  }
}
