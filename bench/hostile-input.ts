// The hostile stanzas of the bench: shapes that made the old hand-written stream parser
// quadratic, sent to the component by a requester that is not allowed to query.
import { NS_EXTAUTH } from '../src/xmpp/namespaces.js';

/** A stanza shape that made the old hand-written parser quadratic, and how many times it repeats. */
export interface HostileStanza {
  shape: 'attributes' | 'namespaces';
  count: number;
}

/**
 * `<iq>` from a requester that is not allowed (the component refuses it), whose `<auth>` element
 * carries `count` attributes of 12 bytes (60,000: 720 kB) or namespace declarations of 16 bytes
 * (60,000: 960 kB), under the component's 1 MiB stanza cap. Parsing it must not hold up the
 * requests behind it.
 */
export function hostileStanza({ shape, count }: HostileStanza, to: string): string {
  const parts: string[] = [];
  for (let k = 0; k < count; k++) {
    const name = k.toString(36).padStart(4, '0');
    parts.push(shape === 'attributes' ? ` a${name}='xyz'` : ` xmlns:p${name}='u'`);
  }
  return `<iq type='get' id='hostile' from='intruder.example.net' to='${to}'><auth xmlns='${NS_EXTAUTH}' user='x'${parts.join('')}>pw</auth></iq>`;
}
