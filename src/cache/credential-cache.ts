import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthRequest } from '../core/auth-request.js';
import { Failure, isOutage, type Outcome } from '../core/failure.js';

/** What the cache wraps: the pool's submit, or anything with its shape. */
export type Submit = (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void) => void;

/** The cache's own submit also needs to know who asks: the requester's domain. */
export type RequesterSubmit = (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void, requester: string) => void;

export interface CredentialCacheOptions {
  /** How long an acceptance answers again without asking the script. Must be > 0. */
  readonly ttlMs: number;
  /** How much longer an acceptance still answers, but only when the script fails. */
  readonly staleMs: number;
  /** Most entries (requester domain, user, server) kept; the least recently used go first. */
  readonly size: number;
  readonly log: Logger;
  /** Milliseconds on a monotonic clock; injectable for tests. */
  readonly now?: () => number;
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

/** What the script said yes to, for one requester domain, user and server. */
interface Entry {
  /** HMAC of the password (with requester, user and server) as a binary string; never the password. */
  hash: string | undefined;
  /** When the script accepted that password. */
  acceptedAt: number;
  /** When the script last said the user exists (-Infinity: never). */
  existsAt: number;
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
  /** Keyed by requester, user and server; in use order, least recent first. */
  private readonly entries = new Map<string, Entry>();
  /** Every requester domain seen: few (they pass the allow list), and a change drops the user under each. */
  private readonly requesters = new Set<string>();
  /** The HMAC key: drawn at start, held only here. */
  private readonly key = randomBytes(32);
  private readonly now: () => number;
  private counters = { hits: 0, misses: 0, stale: 0 };
  /** Bumped by every setpass/removeuser, when asked and when settled. */
  private changes = 0;

  constructor(
    private readonly options: CredentialCacheOptions,
    private readonly next: Submit,
  ) {
    if (!(options.ttlMs > 0)) throw new Error('a credential cache needs a TTL above 0');
    this.now = options.now ?? (() => performance.now());
  }

  get stats(): CacheStats {
    return { ...this.counters };
  }

  /** Entries (requester domain, user, server) currently kept. */
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
    const key = entryKey(requester, request.user, request.server);
    const hash = request.kind === 'auth' ? this.hash(key, request.password ?? '') : undefined;
    if (this.saidYesAt(key, hash, this.now() - this.options.ttlMs) !== undefined) {
      this.counters.hits++;
      return done(true);
    }
    this.counters.misses++;
    const changesBefore = this.changes;
    this.next(request, arrivedAt, (outcome) => {
      if (outcome === true) {
        // A yes asked before a password change or removal settled may be about the old state.
        if (this.changes === changesBefore) this.remember(key, requester, hash, this.now());
      } else if (outcome === false) {
        this.forget(key, hash);
      } else if (outcome instanceof Failure && isOutage(outcome)) {
        const now = this.now();
        const at = this.saidYesAt(key, hash, now - this.options.ttlMs - this.options.staleMs);
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

  /**
   * Drops every entry of the account, under every requester domain (a `forget` query: another
   * instance changed it). An acceptance asked for before this and settled after is not kept.
   */
  forgetUser(user: string, server: string): void {
    this.changes++;
    this.dropUser(user, server);
  }

  private change(request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void): void {
    this.changes++;
    this.dropUser(request.user, request.server);
    this.next(request, arrivedAt, (outcome) => {
      // Again on settling: an acceptance may have been kept while the change was in flight.
      this.changes++;
      this.dropUser(request.user, request.server);
      done(outcome);
    });
  }

  private dropUser(user: string, server: string): void {
    for (const requester of this.requesters) this.entries.delete(entryKey(requester, user, server));
  }

  /** When the script said yes to this (the password, or isuser when `hash` is undefined), if no earlier than `notBefore`. */
  private saidYesAt(key: string, hash: string | undefined, notBefore: number): number | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    let at: number;
    if (hash === undefined) at = entry.existsAt;
    else if (entry.hash !== undefined && sameHash(entry.hash, hash)) at = entry.acceptedAt;
    else return undefined;
    if (!(at >= notBefore)) return undefined;
    // Most recently used goes last.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return at;
  }

  private remember(key: string, requester: string, hash: string | undefined, at: number): void {
    let entry = this.entries.get(key);
    if (entry === undefined) entry = { hash: undefined, acceptedAt: -Infinity, existsAt: -Infinity };
    else this.entries.delete(key);
    this.entries.set(key, entry);
    this.requesters.add(requester);
    if (hash === undefined) {
      entry.existsAt = at;
    } else {
      entry.hash = hash;
      entry.acceptedAt = at;
    }
    while (this.entries.size > this.options.size) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** The script said no: a kept yes to the same question is wrong now. */
  private forget(key: string, hash: string | undefined): void {
    const entry = this.entries.get(key);
    if (entry === undefined) return;
    if (hash === undefined) entry.existsAt = -Infinity;
    else if (entry.hash !== undefined && sameHash(entry.hash, hash)) entry.hash = undefined;
    if (entry.hash === undefined && entry.existsAt === -Infinity) this.entries.delete(key);
  }

  private hash(key: string, password: string): string {
    // The key's parts hold no NUL (control characters are refused at the edge), so the parts cannot run into each other.
    return createHmac('sha256', this.key).update(`${key}\0${password}`).digest('binary');
  }
}

function entryKey(requester: string, user: string, server: string): string {
  return `${requester}\0${user}\0${server}`;
}

function sameHash(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(a, 'binary'), Buffer.from(b, 'binary'));
}
