import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FramingError, type ScriptAnswer } from '../../src/codec/codec.js';
import { codecFor } from '../../src/codec/index.js';
import { taggedCodec } from '../../src/codec/tagged.js';

// Everything through the codec's public face: what the worker uses.
const TAGGED_MAX_REQUEST_BYTES = taggedCodec.maxRequestBytes;
const encodeTaggedLine = (fields: string, id: string) => taggedCodec.encode(fields, id);
/** What the decoder makes of one line on its own; undefined when the line belongs to no request. */
function parseTaggedAnswerLine(line: Buffer): { id: string | undefined; answer: ScriptAnswer } | undefined {
  let parsed: { id: string | undefined; answer: ScriptAnswer } | undefined;
  try {
    taggedCodec.createDecoder().push(Buffer.concat([line, Buffer.from('\n')]), (answer, id) => (parsed ??= { id, answer }));
  } catch (error) {
    if (error instanceof FramingError) return undefined;
    throw error;
  }
  return parsed;
}
import { assertTooLarge, splitAt } from './helpers.js';

function decodeAll(chunks: Buffer[]): Array<[ScriptAnswer, string | undefined]> {
  const decoder = taggedCodec.createDecoder();
  const answers: Array<[ScriptAnswer, string | undefined]> = [];
  for (const chunk of chunks) decoder.push(chunk, (answer, id) => answers.push([answer, id]));
  return answers;
}

describe('tagged codec: requests', () => {
  test('is what codecFor gives for tagged, and carries ids', () => {
    assert.equal(codecFor('tagged'), taggedCodec);
    assert.equal(taggedCodec.tagged, true);
    assert.equal(taggedCodec.maxRequestBytes, 4000);
  });

  test('frames ID:fields and a newline, UTF-8', () => {
    assert.equal(taggedCodec.encode('auth:zoë:example.com:pä:ss', 'a1').toString('utf8'), 'a1:auth:zoë:example.com:pä:ss\n');
    assert.equal(encodeTaggedLine('isuser:a:b', 'zzzzzzzzzzzzzzzz').toString(), 'zzzzzzzzzzzzzzzz:isuser:a:b\n');
  });

  test('refuses a request without a well-formed id (a programming error, not a request error)', () => {
    assert.throws(() => taggedCodec.encode('isuser:a:b'), /needs a request id/);
    for (const id of ['', 'A1', 'a-1', 'a'.repeat(17), 'a:b']) assert.throws(() => encodeTaggedLine('isuser:a:b', id), /invalid request id/, id);
  });

  test('the same size limit as generic, counted without the id; the failure never carries the password', () => {
    const password = 'p'.repeat(TAGGED_MAX_REQUEST_BYTES);
    assertTooLarge(() => taggedCodec.encode(`auth:a:b:${password}`, '1'), password);
    const fits = 'x'.repeat(TAGGED_MAX_REQUEST_BYTES - 'auth:a:b:'.length);
    assert.equal(taggedCodec.encode(`auth:a:b:${fits}`, 'zzzzzzzzzzzzzzzz').length, 16 + 1 + TAGGED_MAX_REQUEST_BYTES + 1);
  });
});

describe('tagged codec: answers', () => {
  test('ID:1, ID:0 and ID:E, tolerating a trailing CR and spaces', () => {
    const cases: Array<[string, ScriptAnswer]> = [
      ['a:1', true],
      ['b7:0', false],
      ['0:E', 'backend-error'],
      ['a:1\r', true],
      ['a:0  ', false],
      ['a:E \r', 'backend-error'],
    ];
    for (const [line, answer] of cases) assert.deepEqual(parseTaggedAnswerLine(Buffer.from(line)), { id: line.split(':')[0], answer }, line);
  });

  test('a well-formed id with anything else is an invalid answer to that id', () => {
    for (const line of ['a:', 'a:11', 'a:yes', 'a:e', 'a: 1', 'a:1:'])
      assert.deepEqual(parseTaggedAnswerLine(Buffer.from(line)), { id: 'a', answer: 'invalid' }, line);
  });

  test('a line without a well-formed id belongs to no request', () => {
    for (const line of ['', '1', '0', 'E', ':1', 'A:1', 'a-b:1', `${'a'.repeat(17)}:1`, ' a:1', 'a1'])
      assert.equal(parseTaggedAnswerLine(Buffer.from(line)), undefined, line);
  });

  test('answers split anywhere across reads decode the same, in the order written', () => {
    const bytes = Buffer.from('a:1\nzz:0\r\n9:E\n');
    const expected: Array<[ScriptAnswer, string]> = [
      [true, 'a'],
      [false, 'zz'],
      ['backend-error', '9'],
    ];
    for (let i = 0; i <= bytes.length; i++)
      for (let j = i; j <= bytes.length; j += 3) assert.deepEqual(decodeAll(splitAt(bytes, [i, j])), expected, `${i},${j}`);
  });

  test('a line without an id is a framing error whose message holds none of the line', () => {
    const decoder = taggedCodec.createDecoder();
    assert.throws(
      () => decoder.push(Buffer.from('Password is hunter2\n'), () => {}),
      (error: unknown) => error instanceof FramingError && !error.message.includes('hunter2'),
    );
  });

  test('an echoed request line is never an answer: at most an invalid one', () => {
    assert.deepEqual(parseTaggedAnswerLine(Buffer.from('1f:auth:alice:example.com:1')), { id: '1f', answer: 'invalid' });
  });

  test('answers before a bad line are delivered, then it throws', () => {
    const answers: string[] = [];
    const decoder = taggedCodec.createDecoder();
    assert.throws(() => decoder.push(Buffer.from('a:1\ngarbage\nb:1\n'), (_answer, id) => answers.push(id!)), FramingError);
    assert.deepEqual(answers, ['a']);
  });

  test('a line that never ends is a framing error, not unbounded memory', () => {
    const decoder = taggedCodec.createDecoder();
    decoder.push(Buffer.from('a:'), () => {});
    assert.equal(decoder.pending, 2);
    assert.throws(() => decoder.push(Buffer.alloc(2000, 0x31), () => {}), FramingError);
  });

  test('decoders are independent', () => {
    const a = taggedCodec.createDecoder();
    const b = taggedCodec.createDecoder();
    a.push(Buffer.from('x:'), () => {});
    assert.equal(a.pending, 2);
    assert.equal(b.pending, 0);
  });
});
