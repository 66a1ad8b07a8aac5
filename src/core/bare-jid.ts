/** A bare JID as the allow list compares it: local part exact, domain case-insensitive. */
export interface BareJid {
  readonly local: string | null;
  readonly domain: string;
}

/** Parses `user@domain` or `domain`; a resource, an empty part or a blank makes it no bare JID. */
export function parseBareJid(text: string): BareJid | null {
  if (text.includes('/') || /[\s\p{Cc}]/u.test(text)) return null;
  const at = text.lastIndexOf('@');
  const local = at === -1 ? null : text.slice(0, at);
  const domain = text.slice(at + 1).toLowerCase();
  if (domain === '' || local === '' || local?.includes('@')) return null;
  return { local, domain };
}

/** Splits any JID (`user@domain/resource`) into its bare part; null when it is not a JID. */
export function bareJidOf(jid: string): BareJid | null {
  const slash = jid.indexOf('/');
  return parseBareJid(slash === -1 ? jid : jid.slice(0, slash));
}
