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
function bareJidOf(jid: string): BareJid | null {
  const slash = jid.indexOf('/');
  return parseBareJid(slash === -1 ? jid : jid.slice(0, slash));
}

/**
 * Returns a check that gives an allowed requester's domain (the default `server`), or null for
 * one that may not query. It remembers its verdict per requester string: a server sends every
 * query from the same one or two JIDs, so parsing each time is wasted work.
 */
export function createAccessCheck(allow: readonly BareJid[], cacheSize = 1024): (requester: string) => string | null {
  const verdicts = new Map<string, string | null>();
  return (requester) => {
    let verdict = verdicts.get(requester);
    if (verdict === undefined) {
      verdict = isAllowed(requester, allow) ? bareJidOf(requester)!.domain : null;
      if (verdicts.size >= cacheSize) verdicts.clear();
      verdicts.set(requester, verdict);
    }
    return verdict;
  };
}

function isAllowed(requester: string, allow: readonly BareJid[]): boolean {
  const bare = bareJidOf(requester);
  if (bare === null) return false;
  return allow.some((entry) => entry.domain === bare.domain && entry.local === bare.local);
}
