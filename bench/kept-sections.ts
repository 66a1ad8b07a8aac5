// Sections of BENCHMARKS.md that other commands write (the tagged bench, the chaos figures):
// each sits between `<!-- section NAME -->` and `<!-- /section NAME -->`, and regenerating the
// main report keeps them.

const SECTION = /<!-- section ([\w-]+) -->\n[\s\S]*?<!-- \/section \1 -->\n?/g;

/** Every kept section of `text`, in order, with its markers. */
export function keptSections(text: string): string[] {
  return [...text.matchAll(SECTION)].map((m) => (m[0].endsWith('\n') ? m[0] : `${m[0]}\n`));
}

/** `report` followed by the sections kept from `previous` (the file it replaces). */
export function withKeptSections(report: string, previous: string): string {
  const kept = keptSections(previous);
  return kept.length === 0 ? report : `${report.trimEnd()}\n\n${kept.join('\n')}`;
}

/** `text` with section `name` replaced by `body` (or added at the end). */
export function replaceSection(text: string, name: string, body: string): string {
  const block = `<!-- section ${name} -->\n${body.trimEnd()}\n<!-- /section ${name} -->\n`;
  const existing = new RegExp(`<!-- section ${name} -->\\n[\\s\\S]*?<!-- /section ${name} -->\\n?`);
  return existing.test(text) ? text.replace(existing, () => block) : `${text.trimEnd()}\n\n${block}`;
}
