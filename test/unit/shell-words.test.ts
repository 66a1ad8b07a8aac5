import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ShellWordsError, splitShellWords } from '../../src/config/shell-words.js';

describe('splitShellWords', () => {
  const cases: Array<[string, string[]]> = [
    ['', []],
    ['   \t\n ', []],
    ['auth.sh', ['auth.sh']],
    ['  /usr/bin/auth  --db  users.db  ', ['/usr/bin/auth', '--db', 'users.db']],
    ['a\tb\nc', ['a', 'b', 'c']],
    // quotes
    ["'/opt/my scripts/auth.sh' --flag", ['/opt/my scripts/auth.sh', '--flag']],
    ['"/opt/my scripts/auth.sh" "a  b"', ['/opt/my scripts/auth.sh', 'a  b']],
    ["'it''s'", ['its']],
    ['a\'b c\'"d e"f', ['ab cd ef']],
    ["'a\\b'", ['a\\b']],
    ["'\"'", ['"']],
    ['"\'"', ["'"]],
    // escaped spaces and other escapes outside quotes
    ['/opt/my\\ scripts/auth.sh arg', ['/opt/my scripts/auth.sh', 'arg']],
    ['a\\\\b', ['a\\b']],
    ["\\'", ["'"]],
    ['\\"x\\"', ['"x"']],
    ['a\\\nb', ['ab']],
    // backslashes inside double quotes: only \" \\ \$ \` are escapes
    ['"a\\"b"', ['a"b']],
    ['"a\\\\b"', ['a\\b']],
    ['"a\\$b"', ['a$b']],
    ['"a\\`b"', ['a`b']],
    ['"a\\nb"', ['a\\nb']],
    ['"a\\ b"', ['a\\ b']],
    ['"a\\\nb"', ['ab']],
    // empty quoted words are words
    ["''", ['']],
    ['""', ['']],
    ["x '' y", ['x', '', 'y']],
    ['x "" y', ['x', '', 'y']],
    // nothing is expanded or interpreted
    ['echo $HOME ${PATH} *.sh ~ ?', ['echo', '$HOME', '${PATH}', '*.sh', '~', '?']],
    ['a | b ; c && d > e < f 2>&1 &', ['a', '|', 'b', ';', 'c', '&&', 'd', '>', 'e', '<', 'f', '2>&1', '&']],
    ['`id` $(id) #comment', ['`id`', '$(id)', '#comment']],
    ['"$HOME *"', ['$HOME *']],
    ["'$HOME'", ['$HOME']],
    ['a;b|c', ['a;b|c']],
    ['päss wörd €', ['päss', 'wörd', '€']],
  ];
  for (const [line, words] of cases) {
    test(`${JSON.stringify(line)} → ${JSON.stringify(words)}`, () => {
      assert.deepEqual(splitShellWords(line), words);
    });
  }

  const errors = ["'abc", "abc 'def", '"abc', 'a "b c', '"abc\\"', 'abc\\', "'", '"', "x 'it\\'s'"];
  for (const line of errors) {
    test(`${JSON.stringify(line)} throws ShellWordsError`, () => {
      assert.throws(() => splitShellWords(line), ShellWordsError);
    });
  }

  test('ShellWordsError is an Error with a message', () => {
    try {
      splitShellWords("'x");
      assert.fail('expected a throw');
    } catch (error) {
      assert.ok(error instanceof Error);
      assert.match((error as Error).message, /quote/);
    }
  });

  const singleQuote = (word: string) => `'${word.replaceAll("'", "'\\''")}'`;

  test('property: single-quoted words joined with blanks split back to the same words', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 20 }), { maxLength: 8 }), fc.constantFrom(' ', '  ', '\t', '\n', ' \t\n'), (words, blank) => {
        assert.deepEqual(splitShellWords(words.map(singleQuote).join(blank)), words);
        assert.deepEqual(splitShellWords(` ${words.map(singleQuote).join(' ')} `), words);
      }),
    );
  });

  test('property: words of shell-special characters survive single quoting', () => {
    const special = fc.string({ unit: fc.constantFrom("'", '"', '\\', '$', '`', ' ', '\t', '\n', '*', '|', ';', '&', 'a'), maxLength: 15 });
    fc.assert(
      fc.property(fc.array(special, { maxLength: 6 }), (words) => {
        assert.deepEqual(splitShellWords(words.map(singleQuote).join(' ')), words);
      }),
    );
  });

  test('property: non-empty words with every character backslash-escaped split back (no newlines)', () => {
    const word = fc.string({ unit: 'binary', minLength: 1, maxLength: 15 }).filter((w) => !w.includes('\n'));
    fc.assert(
      fc.property(fc.array(word, { maxLength: 8 }), (words) => {
        const line = words.map((w) => [...w].map((c) => `\\${c}`).join('')).join(' ');
        assert.deepEqual(splitShellWords(line), words);
      }),
    );
  });
});
