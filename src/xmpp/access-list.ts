import { type BareJid, bareJidOf } from '../core/bare-jid.js';

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
