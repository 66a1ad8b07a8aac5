/** What the XMPP side asks of a script, independent of wire formats on either side. */
export type RequestKind = 'auth' | 'isuser' | 'setpass' | 'tryregister' | 'removeuser' | 'scram';

/** The hashes a `scram` request may ask credentials for, with the length of their digests in bytes. */
export const SCRAM_HASHES = Object.freeze({ 'sha-1': 20, 'sha-256': 32, 'sha-512': 64 } as const);
export type ScramHash = keyof typeof SCRAM_HASHES;

export function isScramHash(name: string): name is ScramHash {
  return Object.hasOwn(SCRAM_HASHES, name);
}

export interface AuthRequest {
  readonly kind: RequestKind;
  readonly user: string;
  readonly server: string;
  /** Present exactly for the kinds that carry a password. */
  readonly password?: string;
  /** Present exactly for `scram`: the hash whose credentials are asked for. */
  readonly hash?: ScramHash;
}

interface KindSpec {
  readonly iqType: 'get' | 'set';
  readonly carriesPassword: boolean;
  /** Safe to send to a second process when the first one was lost: it changes nothing. */
  readonly idempotent: boolean;
}

export const REQUEST_KINDS: Readonly<Record<RequestKind, KindSpec>> = Object.freeze({
  auth: { iqType: 'get', carriesPassword: true, idempotent: true },
  isuser: { iqType: 'get', carriesPassword: false, idempotent: true },
  setpass: { iqType: 'set', carriesPassword: true, idempotent: false },
  tryregister: { iqType: 'set', carriesPassword: true, idempotent: false },
  removeuser: { iqType: 'set', carriesPassword: false, idempotent: false },
  scram: { iqType: 'get', carriesPassword: false, idempotent: true },
});

export function isRequestKind(name: string): name is RequestKind {
  return Object.hasOwn(REQUEST_KINDS, name);
}
