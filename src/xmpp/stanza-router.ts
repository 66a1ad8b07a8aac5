import type { Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { isRequestKind, type AuthRequest } from '../core/auth-request.js';
import { Failure, type Outcome } from '../core/failure.js';
import { badRequest, forbidden, StanzaError, stanzaErrorFor, unavailable } from './stanza-error.js';
import type { BareJid } from '../core/bare-jid.js';
import { createAccessCheck } from './access-list.js';
import { parseAuthQuery, parseForgetQuery } from './auth-query.js';
import { NS_COMPONENT, NS_DISCO_INFO, NS_EXTAUTH, NS_PING } from './namespaces.js';
import { authResultReply, discoInfoReply, emptyResultReply, errorReply, scramResultReply, type ReplyAddress } from './replies.js';
import { ScramCredentials } from '../core/scram-credentials.js';

export interface StanzaRouterOptions {
  readonly domain: string;
  readonly allow: readonly BareJid[];
  readonly name: string;
  readonly log: Logger;
  /** `requester` is the asking server's domain (what a credential cache keys on). */
  readonly submit: (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void, requester: string) => void;
  readonly send: (stanza: string) => void;
  readonly accepting: () => boolean;
  /** Drops whatever this instance has cached about an account (a `forget` query). */
  readonly forget?: (user: string, server: string) => void;
  /**
   * Called once per auth query answered: its kind (or `other`), the outcome (`true`, `false`
   * or the stanza error condition) and the milliseconds since it arrived. Never the user.
   */
  readonly answered?: (kind: string, outcome: string, ms: number) => void;
}

/**
 * Answers every IQ get/set addressed to the component. Nothing from a request is ever echoed
 * back but its addressing: unlike xmpp.js's iq-callee, error replies do not carry the request's
 * child, which for an auth query holds the password.
 */
export function createStanzaRouter(options: StanzaRouterOptions): (stanza: Element) => void {
  const { log, send, answered } = options;
  const requesterDomain = createAccessCheck(options.allow);

  function reply(address: ReplyAddress, error: StanzaError): void {
    send(errorReply(address, error));
  }

  function refuse(address: ReplyAddress, query: Element, error: StanzaError): void {
    answered?.(isRequestKind(query.name) || query.name === 'forget' ? query.name : 'other', error.condition, 0);
    reply(address, error);
  }

  function onAuthQuery(address: ReplyAddress, type: string, query: Element): void {
    const domain = requesterDomain(address.to);
    if (domain === null) {
      log.warn({ event: 'query.refused', from: address.to, id: address.id }, 'query refused: requester not in EXTERNAL_AUTH_ALLOW');
      return refuse(address, query, forbidden('this requester may not query the auth component'));
    }
    if (!options.accepting()) return refuse(address, query, unavailable('the auth component is shutting down'));
    if (query.name === 'forget') return onForget(address, type, query, domain);
    const request = parseOrRefuse(address, query, () => parseAuthQuery(type, query, domain));
    if (request === undefined) return;
    const arrivedAt = performance.now();
    if (log.isLevelEnabled('debug'))
      log.debug({ event: 'query.received', id: address.id, kind: request.kind, user: request.user, server: request.server }, 'query');
    options.submit(
      request,
      arrivedAt,
      (outcome) => {
        const ms = performance.now() - arrivedAt;
        const { kind, user, server } = request;
        if (outcome instanceof Failure) {
          const error = stanzaErrorFor(outcome);
          log.warn(
            { event: 'query.failed', id: address.id, kind, user, server, outcome: error.condition, ms: Math.round(ms), problem: error.text },
            'query failed',
          );
          answered?.(kind, error.condition, ms);
          return reply(address, error);
        }
        // Credentials count as yes; they are never logged (nor is anything else they hold).
        const yes = outcome !== false;
        if (log.isLevelEnabled('info'))
          log.info({ event: 'query.answered', id: address.id, kind, user, server, outcome: yes, ms: Math.round(ms) }, 'query answered');
        answered?.(kind, yes ? 'true' : 'false', ms);
        send(outcome instanceof ScramCredentials ? scramResultReply(address, outcome) : authResultReply(address, kind, outcome));
      },
      domain,
    );
  }

  /** A query's fields, or undefined once a malformed query has been logged and refused. */
  function parseOrRefuse<T>(address: ReplyAddress, query: Element, parse: () => T): T | undefined {
    try {
      return parse();
    } catch (error) {
      if (!(error instanceof StanzaError)) throw error;
      log.warn({ event: 'query.rejected', from: address.to, id: address.id, outcome: error.condition, problem: error.text }, 'query rejected');
      refuse(address, query, error);
      return undefined;
    }
  }

  /**
   * Another instance changed the account (setpass, removeuser): drop what this one cached about
   * it, for every requester domain. The script is not asked; the answer is an empty result.
   */
  function onForget(address: ReplyAddress, type: string, query: Element, domain: string): void {
    const account = parseOrRefuse(address, query, () => parseForgetQuery(type, query, domain));
    if (account === undefined) return;
    options.forget?.(account.user, account.server);
    if (log.isLevelEnabled('info'))
      log.info({ event: 'query.answered', id: address.id, kind: 'forget', user: account.user, server: account.server, outcome: true, ms: 0 }, 'query answered');
    answered?.('forget', 'true', 0);
    send(emptyResultReply(address));
  }

  return (stanza) => {
    if (stanza.name !== 'iq' || stanza.attrs.xmlns !== NS_COMPONENT) return;
    const { type, id, from, to } = stanza.attrs;
    if (type !== 'get' && type !== 'set') return;
    if (id === undefined || from === undefined) {
      log.debug({ event: 'query.ignored', from, id }, 'iq without id or from ignored');
      return;
    }
    const address: ReplyAddress = { id, to: from, from: to ?? options.domain };
    const payload = stanza.getChildElements();
    const query = payload[0];
    if (query === undefined || payload.length !== 1) {
      return reply(address, badRequest('an iq get/set must carry exactly one child element'));
    }
    const ns = query.getNS();
    if (ns === NS_EXTAUTH) {
      try {
        return onAuthQuery(address, type, query);
      } catch (error) {
        // A bug of ours must cost one request, never the process.
        log.error({ event: 'query.unexpected-failure', err: error, id }, 'unexpected failure');
        return reply(address, new StanzaError('wait', 'internal-server-error', 'the auth component failed'));
      }
    }
    if (ns === NS_DISCO_INFO && type === 'get' && query.name === 'query') return send(discoInfoReply(address, options.name));
    if (ns === NS_PING && type === 'get' && query.name === 'ping') return send(emptyResultReply(address));
    reply(address, new StanzaError('cancel', 'service-unavailable', 'this component does not serve that request'));
  };
}
