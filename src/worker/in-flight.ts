import { REQUEST_KINDS } from '../core/auth-request.js';
import type { Failure } from '../core/failure.js';
import type { Job } from '../core/job.js';

/** Tagged: how many ids of timed-out requests are remembered so that their late answers are ignored. */
const FORGOTTEN_IDS_REMEMBERED = 4096;

/** A request written to the process. */
export interface Entry {
  readonly job: Job;
  readonly key: string | number;
  /** performance.now() when written, moved on by the time output was paused. */
  writtenAt: number;
  /** The requester has had its timeout; the entry stays to catch the script's late answer. */
  expired: boolean;
}

/**
 * The requests one process holds, in write order, keyed by request id (tagged) or a counter
 * (classic); and, for tagged, the ids of requests given up after a timeout, whose late answers
 * are still expected. Pure bookkeeping: the session decides what each answer means.
 */
export class InFlight {
  private readonly entries = new Map<string | number, Entry>();
  private readonly forgotten = new Set<string>();
  private nextKey = 0;

  /** Entries held, timed-out ones whose answers are still awaited included. */
  get size(): number {
    return this.entries.size;
  }

  /** Late answers still expected for forgotten ids. */
  get forgottenCount(): number {
    return this.forgotten.size;
  }

  values(): IterableIterator<Entry> {
    return this.entries.values();
  }

  add(job: Job, writtenAt: number): void {
    const key = job.tag ?? this.nextKey++;
    this.entries.set(key, { job, key, writtenAt, expired: false });
  }

  /** Classic protocols: takes the oldest entry, to which the next answer belongs. */
  takeOldest(): Entry | undefined {
    const first = this.entries.values().next();
    if (first.done) return undefined;
    this.entries.delete(first.value.key);
    return first.value;
  }

  /** Tagged: takes the entry with this id. */
  take(id: string): Entry | undefined {
    const entry = this.entries.get(id);
    if (entry !== undefined) this.entries.delete(id);
    return entry;
  }

  /** Tagged: drops a timed-out entry but remembers its id, so that its late answer is recognised. */
  forget(entry: Entry): void {
    this.entries.delete(entry.key);
    this.forgotten.add(entry.key as string);
    if (this.forgotten.size > FORGOTTEN_IDS_REMEMBERED) this.forgotten.delete(this.forgotten.values().next().value!);
  }

  /** Tagged: true once for an id that was forgotten. */
  takeForgotten(id: string): boolean {
    return this.forgotten.delete(id);
  }

  /** Settles the oldest request whose requester still waits, and drops it. */
  settleOldest(failure: Failure): void {
    for (const entry of this.entries.values()) {
      if (entry.expired) continue;
      this.entries.delete(entry.key);
      entry.job.settle(failure);
      return;
    }
  }

  /** Settles every request whose requester still waits, and drops everything. */
  failAll(failure: Failure): void {
    for (const { job, expired } of this.entries.values()) if (!expired) job.settle(failure);
    this.entries.clear();
  }

  /**
   * Empties the table for a process given up on: returns the requests that changed nothing (they
   * may go to another process once), and settles the others with `failure` (they may have done
   * their work before the process was lost: doing it twice is worse than an error).
   */
  strand(failure: Failure): Job[] {
    const retry: Job[] = [];
    for (const { job, expired } of this.entries.values()) {
      if (expired) continue;
      if (retriable(job)) retry.push(job);
      else job.settle(failure);
    }
    this.entries.clear();
    return retry;
  }

  /** What `strand` would do now, and how many requesters still wait. */
  counts(): { requeued: number; failed: number } {
    let requeued = 0;
    let failed = 0;
    for (const { job, expired } of this.entries.values()) {
      if (expired) continue;
      if (retriable(job)) requeued++;
      else failed++;
    }
    return { requeued, failed };
  }
}

function retriable(job: Job): boolean {
  return REQUEST_KINDS[job.request.kind].idempotent && !job.retried;
}
