import type { Element } from '@xmpp/xml';
import { REQUEST_KINDS, isRequestKind, isScramHash, SCRAM_HASHES, type AuthRequest } from '../core/auth-request.js';
import { badRequest, notImplemented, type StanzaError } from './stanza-error.js';

// Control characters would let a field smuggle a second request line (or a bogus frame) to the script.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * Turns the query element of an IQ into a request, or throws the StanzaError to answer with.
 * `requesterDomain` fills in a missing `server`.
 */
export function parseAuthQuery(iqType: string | undefined, query: Element, requesterDomain: string): AuthRequest {
  const kind = query.name;
  if (!isRequestKind(kind)) throw notImplemented(`'${truncate(kind)}' is not a query of urn:x-extauth:0`);
  const spec = REQUEST_KINDS[kind];
  if (iqType !== spec.iqType) throw badRequest(`'${kind}' must be sent in an iq of type '${spec.iqType}'`);

  const { user, server } = parseAccount(query, requesterDomain);
  // Text is all a query holds: with markup inside, the password would be its text nodes glued together.
  if (query.getChildElements().length > 0) throw badRequest(`'${kind}' must not contain elements`);

  if (kind === 'scram') {
    const hash = query.attrs.hash;
    if (hash === undefined || !isScramHash(hash)) throw badRequest(`the 'hash' attribute must be one of ${Object.keys(SCRAM_HASHES).join(', ')}`);
    return { kind, user, server, hash };
  }
  if (!spec.carriesPassword) return { kind, user, server };
  const password = query.getText();
  if (CONTROL_CHARACTER.test(password)) throw badRequest('the password contains a control character');
  return { kind, user, server, password };
}

/** The account a query is about, by the same rules as every other query. */
export interface Account {
  readonly user: string;
  readonly server: string;
}

/**
 * `<forget user= server=?/>` in an iq of type `set`: the account whose cached answers go. Not a
 * request for the script, so not an AuthRequest. Throws the StanzaError to answer with.
 */
export function parseForgetQuery(iqType: string | undefined, query: Element, requesterDomain: string): Account {
  if (iqType !== 'set') throw badRequest("'forget' must be sent in an iq of type 'set'");
  return parseAccount(query, requesterDomain);
}

function parseAccount(query: Element, requesterDomain: string): Account {
  const user = query.attrs.user;
  if (user === undefined || user === '') throw badRequest("the 'user' attribute is missing or empty");
  checkIdentifier('user', user);
  const server = query.attrs.server ?? requesterDomain;
  if (server === '') throw badRequest("the 'server' attribute is empty");
  checkIdentifier('server', server);
  return { user, server };
}

function checkIdentifier(field: string, value: string): void {
  if (value.includes(':')) throw invalid(field, "contains ':'");
  if (CONTROL_CHARACTER.test(value)) throw invalid(field, 'contains a control character');
}

function invalid(field: string, problem: string): StanzaError {
  return badRequest(`the '${field}' attribute ${problem}`);
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
