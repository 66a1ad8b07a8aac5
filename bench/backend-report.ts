// The "Backends" section of BENCHMARKS.md is written by bench/backend-prosody.ts, not by
// `npm run bench`: these keep it in place when either rewrites the file.

export const BACKENDS_HEADING = '## Backends';

/** The `## Backends` section of a BENCHMARKS.md text (heading to the next `## `), or undefined. */
export function backendsSection(text: string): string | undefined {
  const start = text.indexOf(`\n${BACKENDS_HEADING}\n`);
  if (start < 0) return undefined;
  const end = text.indexOf('\n## ', start + 1);
  return text.slice(start + 1, end < 0 ? text.length : end + 1).replace(/\n*$/, '\n');
}

/**
 * `text` with its Backends section replaced by `section` (or, when it has none, `section` put
 * before `## Every run`, else at the end).
 */
export function withBackendsSection(text: string, section: string | undefined): string {
  if (section === undefined) return text;
  const old = backendsSection(text);
  if (old !== undefined) return text.replace(old, () => section);
  const anchor = text.indexOf('\n## Every run\n');
  if (anchor < 0) return `${text.replace(/\n*$/, '\n')}\n${section}`;
  return `${text.slice(0, anchor + 1)}${section}\n${text.slice(anchor + 1)}`;
}
