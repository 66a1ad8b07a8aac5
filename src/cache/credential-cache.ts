import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthRequest } from '../core/auth-request.js';
import { isOutage, type Outcome } from '../core/failure.js';

/** What the cache wraps: the pool's submit, or anything with its shape. */
export type Submit = (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void) => void;

/** The cache's own submit also needs to know who asks: the requester's domain. */
export type RequesterSubmit = (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void, requester: string) => void;

export interface CredentialCacheOptions {
  /** How long an acceptance answers again without asking the script. Must be > 0. */
  readonly ttlMs: number;
  /** How much longer an acceptance still answers, but only when the script fails. */
  readonly staleMs: number;
  /** Most cached users (one user on one server); the least recently used go first. */
  readonly size: number;
  readonly log: Logger;
  /** Milliseconds on a monotonic clock; injectable for tests. */
  readonly now?: () => number;
  /** The HMAC key; a fresh random one by default. Injectable for tests only. */
  readonly key?: Buffer;
}

/** Counters since start, for metrics. */
export interface CacheStats {
  /** Answered from the cache within the TTL, without asking the script. */
  readonly hits: number;
  /** `auth`/`isuser` requests the cache could not answer: they went to the script. */
  readonly misses: number;
  /** Answered from the cache because the script failed (timeout, crash, backend down). */
  readonly stale: number;
}

interface Acceptance {
  /** HMAC of the password (with requester, user and server), never the password itself. */
  readonly hash: Buffer;
  /** When the script accepted it. */
  readonly at: number;
}

/** What is known about one user on one server, per requester domain. */
interface UserEntry {
  readonly passwords: Map<string, Acceptance>;
  /** When the script last said the user exists. */
  readonly exists: Map<string, number>;
}

/**
 * Remembers what the script accepted so that a repeat login needs no script, and so that
 * logins the script recently accepted keep working while the script or its backend is down.
 *
 * Only yes answers are kept: `auth` acceptances (as a keyed hash of the password) and `isuser`
 * true, per requester domain, user and server. Within the TTL a matching password is answered
 * here; any other password goes to the script. When the script then fails with an outage
 * (timeout, crash, bad answer, backend error, cannot start), a matching acceptance younger than
 * TTL + STALE answers instead; everything else gets the failure unchanged. A refusal is never
 * kept and drops the acceptance of that same password. `setpass` and `removeuser` drop the
 * user's entries when they are asked, whatever the script answers, and an acceptance asked
 * for before such a change settled is not kept.
 */
export class CredentialCache {
  private readonly entries = new Map<string, UserEntry>();
  private readonly key: Buffer;
  private readonly now: () => number;
  private counters = { hits: 0, misses: 0, stale: 0 };
  /** Bumped by every setpass/removeuser, when asked and when settled. */
  private changes = 0;

  constructor(
    private readonly options: CredentialCacheOptions,
    private readonly next: Submit,
  ) {
    if (!(options.ttlMs > 0)) throw new Error('a credential cache needs a TTL above 0');
    this.key = options.key ?? randomBytes(32);
    this.now = options.now ?? (() => performance.now());
  }

  get stats(): CacheStats {
    return { ...this.counters };
  }

  /** Users currently cached. */
  get size(): number {
    return this.entries.size;
  }

  /** Same contract as the pool's submit: `done` is called exactly once. */
  readonly submit: RequesterSubmit = (request, arrivedAt, done, requester) => {
    switch (request.kind) {
      case 'auth':
      case 'isuser':
        return this.lookup(request, requester, arrivedAt, done);
      case 'setpass':
      case 'removeuser':
        return this.change(request, arrivedAt, done);
      default:
        return this.next(request, arrivedAt, done);
    }
  };

  private lookup(request: AuthRequest, requester: string, arrivedAt: number, done: (outcome: Outcome) => void): void {
    const userKey = keyOf(request);
    const hash = request.kind === 'auth' ? this.hash(request, requester) : undefined;
    const asked = this.now();
    if (this.acceptedAt(userKey, requester, hash, asked - this.options.ttlMs) !== undefined) {
      this.counters.hits++;
      return done(true);
    }
    this.counters.misses++;
    const changesBefore = this.changes;
    this.next(request, arrivedAt, (outcome) => {
      if (outcome === true) {
        // A yes asked before a password change or removal settled may be about the old state.
        if (this.changes === changesBefore) this.remember(userKey, requester, hash, this.now());
      } else if (outcome === false) {
        this.forget(userKey, requester, hash);
      } else if (isOutage(outcome)) {
        const now = this.now();
        const at = this.acceptedAt(userKey, requester, hash, now - this.options.ttlMs - this.options.staleMs);
        if (at !== undefined) {
          this.counters.stale++;
          this.options.log.warn(
            { kind: request.kind, user: request.user, server: request.server, reason: outcome.reason, ageS: Math.round((now - at) / 1000) },
            'answered from the credential cache: the script failed',
          );
          return done(true);
        }
      }
      done(outcome);
    });
  }

  private change(request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void): void {
    const userKey = keyOf(request);
    this.changes++;
    this.entries.delete(userKey);
    this.next(request, arrivedAt, (outcome) => {
      // Again on settling: an acceptance may have been kept while the change was in flight.
      this.changes++;
      this.entries.delete(userKey);
      done(outcome);
    });
  }

  /** When the matching acceptance was made, if it is no older than `notBefore`. */
  private acceptedAt(userKey: string, requester: string, hash: Buffer | undefined, notBefore: number): number | undefined {
    const entry = this.entries.get(userKey);
    if (entry === undefined) return undefined;
    let at: number | undefined;
    if (hash === undefined) {
      at = entry.exists.get(requester);
    } else {
      const acceptance = entry.passwords.get(requester);
      if (acceptance !== undefined && timingSafeEqual(acceptance.hash, hash)) at = acceptance.at;
    }
    if (at === undefined || at < notBefore) return undefined;
    // Most recently used goes last.
    this.entries.delete(userKey);
    this.entries.set(userKey, entry);
    return at;
  }

  private remember(userKey: string, requester: string, hash: Buffer | undefined, at: number): void {
    let entry = this.entries.get(userKey);
    if (entry === undefined) {
      entry = { passwords: new Map(), exists: new Map() };
    } else {
      this.entries.delete(userKey);
    }
    this.entries.set(userKey, entry);
    if (hash === undefined) entry.exists.set(requester, at);
    else entry.passwords.set(requester, { hash, at });
    while (this.entries.size > this.options.size) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** The script said no: a kept yes to the same question is wrong now. */
  private forget(userKey: string, requester: string, hash: Buffer | undefined): void {
    const entry = this.entries.get(userKey);
    if (entry === undefined) return;
    if (hash === undefined) {
      entry.exists.delete(requester);
    } else {
      const acceptance = entry.passwords.get(requester);
      if (acceptance !== undefined && timingSafeEqual(acceptance.hash, hash)) entry.passwords.delete(requester);
    }
    if (entry.passwords.size === 0 && entry.exists.size === 0) this.entries.delete(userKey);
  }

  private hash(request: AuthRequest, requester: string): Buffer {
    // No field holds a NUL (control characters are refused at the edge), so the parts cannot run into each other.
    return createHmac('sha256', this.key).update(`${requester}\0${request.user}\0${request.server}\0${request.password ?? ''}`).digest();
  }
}

function keyOf(request: AuthRequest): string {
  return `${request.user}\0${request.server}`;
}
