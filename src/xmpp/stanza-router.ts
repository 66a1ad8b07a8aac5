import type { Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import type { AuthRequest } from '../core/auth-request.js';
import { Failure, type Outcome } from '../core/failure.js';
import { badRequest, forbidden, StanzaError, stanzaErrorFor, unavailable } from './stanza-error.js';
import { createAccessCheck, type BareJid } from './access-list.js';
import { parseAuthQuery } from './auth-query.js';
import { NS_DISCO_INFO, NS_EXTAUTH, NS_PING } from './namespaces.js';
import { authResultReply, discoInfoReply, emptyResultReply, errorReply, type ReplyAddress } from './replies.js';

export interface StanzaRouterOptions {
  readonly domain: string;
  readonly allow: readonly BareJid[];
  readonly name: string;
  readonly log: Logger;
  readonly submit: (request: AuthRequest, arrivedAt: number, done: (outcome: Outcome) => void) => void;
  readonly send: (stanza: string) => void;
  readonly accepting: () => boolean;
}

/**
 * Answers every IQ get/set addressed to the component. Nothing from a request is ever echoed
 * back but its addressing: unlike xmpp.js's iq-callee, error replies do not carry the request's
 * child, which for an auth query holds the password.
 */
export function createStanzaRouter(options: StanzaRouterOptions): (stanza: Element) => void {
  const { log, send } = options;
  const requesterDomain = createAccessCheck(options.allow);

  function reply(address: ReplyAddress, error: StanzaError): void {
    send(errorReply(address, error));
  }

  function onAuthQuery(address: ReplyAddress, type: string, query: Element): void {
    const domain = requesterDomain(address.to);
    if (domain === null) {
      log.warn({ from: address.to, id: address.id }, 'query refused: requester not in EXTERNAL_AUTH_ALLOW');
      return reply(address, forbidden('this requester may not query the auth component'));
    }
    if (!options.accepting()) return reply(address, unavailable('the auth component is shutting down'));
    let request: AuthRequest;
    try {
      request = parseAuthQuery(type, query, domain);
    } catch (error) {
      if (!(error instanceof StanzaError)) throw error;
      log.info({ from: address.to, id: address.id, condition: error.condition, problem: error.text }, 'query rejected');
      return reply(address, error);
    }
    const arrivedAt = performance.now();
    if (log.isLevelEnabled('debug')) log.debug({ id: address.id, kind: request.kind, user: request.user, server: request.server }, 'query');
    options.submit(request, arrivedAt, (outcome) => {
      if (outcome instanceof Failure) {
        const error = stanzaErrorFor(outcome);
        log.info({ id: address.id, kind: request.kind, user: request.user, condition: error.condition, problem: error.text }, 'query failed');
        return reply(address, error);
      }
      if (log.isLevelEnabled('debug')) log.debug({ id: address.id, kind: request.kind, user: request.user, result: outcome, ms: Math.round(performance.now() - arrivedAt) }, 'answer');
      send(authResultReply(address, request.kind, outcome));
    });
  }

  return (stanza) => {
    if (stanza.name !== 'iq') return;
    const { type, id, from, to } = stanza.attrs;
    if (type !== 'get' && type !== 'set') return;
    if (id === undefined || from === undefined) {
      log.debug({ from, id }, 'iq without id or from ignored');
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
        log.error({ err: (error as Error).message, id }, 'unexpected failure');
        return reply(address, new StanzaError('wait', 'internal-server-error', 'the auth component failed'));
      }
    }
    if (ns === NS_DISCO_INFO && type === 'get' && query.name === 'query') return send(discoInfoReply(address, options.name));
    if (ns === NS_PING && type === 'get' && query.name === 'ping') return send(emptyResultReply(address));
    reply(address, new StanzaError('cancel', 'service-unavailable', 'this component does not serve that request'));
  };
}
