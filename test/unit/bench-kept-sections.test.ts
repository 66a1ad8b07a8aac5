import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keptSections, replaceSection, withKeptSections } from '../../bench/kept-sections.js';

test('regenerating the report keeps the sections other commands wrote, and only those', () => {
  const previous =
    '# Old report\nold figures\n\n<!-- section tagged -->\n## Tagged\nA\n<!-- /section tagged -->\n\ntrailing old text\n<!-- section chaos -->\n## Chaos\nB\n<!-- /section chaos -->\n';
  const next = withKeptSections('# New report\nnew figures\n', previous);
  assert.ok(next.startsWith('# New report\nnew figures\n'));
  assert.ok(!next.includes('old figures') && !next.includes('trailing old text'));
  assert.deepEqual(keptSections(next), keptSections(previous));
  assert.equal(keptSections(next).length, 2);
});

test('a section is replaced in place, or added at the end', () => {
  const text = '# R\n\n<!-- section tagged -->\nold\n<!-- /section tagged -->\n\n<!-- section chaos -->\nC\n<!-- /section chaos -->\n';
  const replaced = replaceSection(text, 'tagged', 'new $& $1');
  assert.equal(replaced, '# R\n\n<!-- section tagged -->\nnew $& $1\n<!-- /section tagged -->\n\n<!-- section chaos -->\nC\n<!-- /section chaos -->\n');
  assert.equal(replaceSection('# R\n', 'x', 'body'), '# R\n\n<!-- section x -->\nbody\n<!-- /section x -->\n');
});
