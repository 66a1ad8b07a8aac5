import xml from '@xmpp/xml';
import type { ScramCredentials } from '../core/scram-credentials.js';
import type { StanzaError } from './stanza-error.js';
import { NS_DISCO_INFO, NS_EXTAUTH, NS_PING, NS_STANZAS } from './namespaces.js';

// Replies are written as strings: they are tiny, fixed in shape and on the hot path.
// Only attribute values taken from the request are escaped; nothing else of the request is echoed.

/** Where a reply goes: the request's id, with its addresses swapped. */
export interface ReplyAddress {
  readonly id: string;
  /** The requester. */
  readonly to: string;
  /** The JID the request was addressed to. */
  readonly from: string;
}

const NEEDS_ESCAPE = /["&'<>]/;

/** Most ids and JIDs have nothing to escape; skip the replace for those. */
function esc(value: string): string {
  return NEEDS_ESCAPE.test(value) ? xml.escapeXML(value) : value;
}

function iqHead(type: 'result' | 'error', address: ReplyAddress): string {
  return `<iq type='${type}' id='${esc(address.id)}' to='${esc(address.to)}' from='${esc(address.from)}'>`;
}

export function authResultReply(address: ReplyAddress, kind: string, result: boolean): string {
  return `${iqHead('result', address)}<${kind} xmlns='${NS_EXTAUTH}' result='${result}'/></iq>`;
}

/** Credentials go out as the script gave them (validated base64), only in this reply. */
export function scramResultReply(address: ReplyAddress, credentials: ScramCredentials): string {
  const { iterations, salt, storedKey, serverKey } = credentials;
  return (
    `${iqHead('result', address)}<scram xmlns='${NS_EXTAUTH}' result='true' iterations='${iterations}' salt='${salt}'` +
    ` stored-key='${storedKey}' server-key='${serverKey}'/></iq>`
  );
}

export function errorReply(address: ReplyAddress, error: Pick<StanzaError, 'type' | 'condition' | 'text'>): string {
  return (
    `${iqHead('error', address)}<error type='${error.type}'><${error.condition} xmlns='${NS_STANZAS}'/>` +
    `<text xmlns='${NS_STANZAS}'>${xml.escapeXMLText(error.text)}</text></error></iq>`
  );
}

export function discoInfoReply(address: ReplyAddress, name: string): string {
  return (
    `${iqHead('result', address)}<query xmlns='${NS_DISCO_INFO}'>` +
    `<identity category='component' type='generic' name='${esc(name)}'/>` +
    `<feature var='${NS_DISCO_INFO}'/><feature var='${NS_PING}'/><feature var='${NS_EXTAUTH}'/>` +
    `</query></iq>`
  );
}

export function emptyResultReply(address: ReplyAddress): string {
  return `${iqHead('result', address)}</iq>`.replace('></iq>', '/>');
}
