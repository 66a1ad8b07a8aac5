// What the bench measures, as data: the login paths per server, the concurrencies, and how much
// each mode measures. The runner (run.ts) walks these tables; a new path is a row here and a
// start function in login-case.ts.
import type { Mechanism } from '../support/xmpp-client.js';

export type ServerKind = 'prosody' | 'ejabberd';
/**
 * internal: the server's own account store (Prosody `internal_plain`, ejabberd `internal`), the
 * ceiling. in-process: Prosody's `mod_auth_external_insecure`. native: ejabberd's `extauth`.
 * lockstep / tagged: through the shim and the component.
 */
export type PathKind = 'internal' | 'in-process' | 'native' | 'lockstep' | 'tagged';
export type ScriptSpeed = 'instant' | '20ms';

export interface LoginPath {
  kind: PathKind;
  /** The script's speed; none for `internal`. */
  script?: ScriptSpeed;
  mechanism: Mechanism;
}

/** Client connections logging in at once. */
export const CONCURRENCY = [1, 8, 32] as const;
/** The slow script's answer time, a backend call. */
export const SLOW_SCRIPT_MS = 20;
/** Lockstep processes (and ejabberd's extauth pool): 8 × 1 / 20 ms = 400 logins/s at most. */
export const LOCKSTEP_PROCESSES = 8;
/** The bench users: u0..u63, password pw-uK (the script and the account stores agree). */
export const USERS = 64;

export function delayMs(script: ScriptSpeed | undefined): number {
  return script === '20ms' ? SLOW_SCRIPT_MS : 0;
}

/** The paths measured on a server, in round-1 order (round 2 runs them reversed). */
export function pathsFor(server: ServerKind): LoginPath[] {
  const scripted = (kind: PathKind, mechanism: Mechanism = 'PLAIN'): LoginPath[] =>
    (['instant', '20ms'] as const).map((script) => ({ kind, script, mechanism }));
  return [
    { kind: 'internal', mechanism: 'PLAIN' },
    ...scripted(server === 'prosody' ? 'in-process' : 'native'),
    ...scripted('lockstep'),
    ...scripted('tagged'),
    // SCRAM-SHA-256 next to PLAIN: the server runs SCRAM with credentials fetched through the component.
    { kind: 'lockstep', script: 'instant', mechanism: 'SCRAM-SHA-256' },
  ];
}

export function pathKey(path: LoginPath): string {
  return `${path.kind}${path.script ? `/${path.script}` : ''}${path.mechanism === 'PLAIN' ? '' : `/${path.mechanism}`}`;
}

export function pathName(server: ServerKind, kind: PathKind): string {
  switch (kind) {
    case 'internal':
      return server === 'prosody' ? 'internal_plain' : 'internal';
    case 'in-process':
      return 'mod_auth_external_insecure';
    case 'native':
      return 'native extauth ×8';
    case 'lockstep':
      return `component lockstep ×${LOCKSTEP_PROCESSES}`;
    case 'tagged':
      return 'component tagged ×1';
  }
}

export function pathLabel(server: ServerKind, path: LoginPath): string {
  const script = path.script ? `, ${path.script === 'instant' ? 'instant' : `${SLOW_SCRIPT_MS} ms`}` : '';
  return `${pathName(server, path.kind)}${script}${path.mechanism === 'PLAIN' ? '' : `, ${path.mechanism}`}`;
}

export interface BenchSize {
  name: 'quick' | 'full';
  /** Rounds over every path (2: the second in reverse order). */
  rounds: number;
  /** Every installed generation, or only the newest of each server. */
  generations: 'all' | 'newest';
  /** A measurement ends after this many logins or this long, whichever comes first. */
  logins: number;
  maxMs: number;
  /** Logins on each fresh server before measuring (connections warmed, code loaded). */
  warmupLogins: number;
  /** Component-only runs (IQ round trip, CPU per IQ): length of each, and how many. */
  componentRunMs: number;
  componentRuns: number;
  /** Logins timed behind the hostile stanza (and without it). */
  hostileLogins: number;
}

export const QUICK: BenchSize = {
  name: 'quick',
  rounds: 1,
  generations: 'newest',
  logins: 400,
  maxMs: 1500,
  warmupLogins: 50,
  componentRunMs: 1000,
  componentRuns: 1,
  hostileLogins: 3,
};

export const FULL: BenchSize = {
  name: 'full',
  rounds: 2,
  generations: 'all',
  logins: 1000,
  maxMs: 2500,
  warmupLogins: 100,
  componentRunMs: 1500,
  componentRuns: 2,
  hostileLogins: 5,
};

/** A size with its measurements shortened by `factor` (0 < factor ≤ 1), to check the harness. */
export function scaled(size: BenchSize, factor: number): BenchSize {
  return {
    ...size,
    logins: Math.max(20, Math.round(size.logins * factor)),
    maxMs: Math.max(300, Math.round(size.maxMs * factor)),
    warmupLogins: Math.max(10, Math.round(size.warmupLogins * factor)),
    componentRunMs: Math.max(300, Math.round(size.componentRunMs * factor)),
  };
}
