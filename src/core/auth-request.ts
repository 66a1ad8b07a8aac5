/** What the XMPP side asks of a script, independent of wire formats on either side. */
export type RequestKind = 'auth' | 'isuser' | 'setpass' | 'tryregister' | 'removeuser';

export interface AuthRequest {
  readonly kind: RequestKind;
  readonly user: string;
  readonly server: string;
  /** Present exactly for the kinds that carry a password. */
  readonly password?: string;
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
});

export function isRequestKind(name: string): name is RequestKind {
  return Object.hasOwn(REQUEST_KINDS, name);
}
