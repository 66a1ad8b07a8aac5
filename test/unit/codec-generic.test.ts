import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AuthRequest, RequestKind } from '../../src/core/auth-request.js';
import { FramingError, type ScriptAnswer } from '../../src/codec/codec.js';
import { codecFor } from '../../src/codec/index.js';
import { genericCodec } from '../../src/codec/generic.js';
import { requestFields } from '../../src/codec/request-fields.js';

// Everything through the codec's public face: what the worker uses.
const GENERIC_MAX_REQUEST_BYTES = genericCodec.maxRequestBytes;
const encodeGenericRequest = (request: AuthRequest) => genericCodec.encode(requestFields(request));
/** What the decoder makes of one line on its own. */
function parseGenericAnswerLine(line: Buffer): ScriptAnswer | undefined {
  let answer: ScriptAnswer | undefined;
  genericCodec.createDecoder().push(Buffer.concat([line, Buffer.from('\n')]), (a) => (answer ??= a));
  return answer;
}
import { assertTooLarge, splitAt } from './helpers.js';

/** Feeds `chunks` to a fresh decoder and returns every answer it produced. */
function decodeChunks(chunks: readonly Buffer[]): ScriptAnswer[] {
  const decoder = genericCodec.createDecoder();
  const answers: ScriptAnswer[] = [];
  for (const chunk of chunks) decoder.push(chunk, (answer) => answers.push(answer));
  return answers;
}

describe('encodeGenericRequest', () => {
  const cases: Array<[AuthRequest, string]> = [
    [{ kind: 'auth', user: 'alice', server: 'example.com', password: 'secret' }, 'auth:alice:example.com:secret\n'],
    [{ kind: 'isuser', user: 'alice', server: 'example.com' }, 'isuser:alice:example.com\n'],
    [{ kind: 'setpass', user: 'bob', server: 'example.org', password: 'n3w' }, 'setpass:bob:example.org:n3w\n'],
    [{ kind: 'tryregister', user: 'carol', server: 'example.net', password: 'pw' }, 'tryregister:carol:example.net:pw\n'],
    [{ kind: 'removeuser', user: 'dave', server: 'example.com' }, 'removeuser:dave:example.com\n'],
  ];
  for (const [request, line] of cases) {
    test(`encodes ${request.kind} as ${JSON.stringify(line)}`, () => {
      assert.deepEqual(encodeGenericRequest(request), Buffer.from(line, 'utf8'));
    });
  }

  test('keeps colons in the password as they are', () => {
    const bytes = encodeGenericRequest({ kind: 'auth', user: 'alice', server: 'example.com', password: 'a:b::c:' });
    assert.equal(bytes.toString('utf8'), 'auth:alice:example.com:a:b::c:\n');
  });

  test('keeps an empty password as an empty fourth field', () => {
    const bytes = encodeGenericRequest({ kind: 'auth', user: 'alice', server: 'example.com', password: '' });
    assert.equal(bytes.toString('utf8'), 'auth:alice:example.com:\n');
  });

  test('writes multi-byte UTF-8 as UTF-8 bytes', () => {
    const password = 'pässwörd€😀 ';
    const bytes = encodeGenericRequest({ kind: 'auth', user: 'jürgen', server: 'exämple.com', password });
    const expected = Buffer.from(`auth:jürgen:exämple.com:${password}\n`, 'utf8');
    assert.deepEqual(bytes, expected);
    assert.ok(bytes.length > `auth:jürgen:exämple.com:${password}\n`.length, 'more bytes than characters');
  });

  test(`accepts a request of exactly ${GENERIC_MAX_REQUEST_BYTES} bytes (newline not counted)`, () => {
    const prefix = 'auth:u:s:';
    const password = 'p'.repeat(GENERIC_MAX_REQUEST_BYTES - prefix.length);
    const bytes = encodeGenericRequest({ kind: 'auth', user: 'u', server: 's', password });
    assert.equal(bytes.length, GENERIC_MAX_REQUEST_BYTES + 1);
    assert.equal(bytes[bytes.length - 1], 0x0a);
    assert.equal(bytes.subarray(0, -1).toString('utf8'), prefix + password);
  });

  test(`rejects a request of ${GENERIC_MAX_REQUEST_BYTES + 1} bytes with modify/policy-violation`, () => {
    const password = 'p'.repeat(GENERIC_MAX_REQUEST_BYTES - 'auth:u:s:'.length + 1);
    assertTooLarge(() => encodeGenericRequest({ kind: 'auth', user: 'u', server: 's', password }), password);
  });

  test('counts bytes, not characters, against the limit', () => {
    // 9 + 1330 * 3 + 1 = 4000 bytes but only 1340 characters.
    const fits = `${'€'.repeat(1330)}a`;
    assert.equal(encodeGenericRequest({ kind: 'auth', user: 'u', server: 's', password: fits }).length, 4001);
    // 9 + 1331 * 3 = 4002 bytes, 1340 characters.
    const tooLong = '€'.repeat(1331);
    assert.ok(`auth:u:s:${tooLong}`.length < GENERIC_MAX_REQUEST_BYTES);
    assertTooLarge(() => encodeGenericRequest({ kind: 'auth', user: 'u', server: 's', password: tooLong }), tooLong);
  });

  test('applies the limit to requests without a password too', () => {
    const user = 'u'.repeat(GENERIC_MAX_REQUEST_BYTES);
    assertTooLarge(() => encodeGenericRequest({ kind: 'isuser', user, server: 's' }));
  });

  test('the codec object describes the generic protocol', () => {
    assert.equal(genericCodec.name, 'generic');
    assert.equal(genericCodec.maxRequestBytes, 4000);
    assert.equal(codecFor('generic'), genericCodec);
    assert.deepEqual(genericCodec.encode('isuser:a:b'), Buffer.from('isuser:a:b\n'));
    assert.ok(Object.isFrozen(genericCodec));
  });

  test('property: encoding then splitting on the first colons gives the original fields back', () => {
    const noColon = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes(':'));
    const kind = fc.constantFrom<RequestKind>('auth', 'isuser', 'setpass', 'tryregister', 'removeuser');
    const password = fc.string({ unit: 'binary', maxLength: 60 });
    const colonful = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constant(':')), { maxLength: 10 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(kind, noColon, noColon, fc.oneof(password, colonful), (kind, user, server, pw) => {
        const carries = kind === 'auth' || kind === 'setpass' || kind === 'tryregister';
        const request: AuthRequest = carries ? { kind, user, server, password: pw } : { kind, user, server };
        const bytes = encodeGenericRequest(request);
        assert.equal(bytes[bytes.length - 1], 0x0a);
        const line = bytes.subarray(0, -1).toString('utf8');
        const parts = line.split(':');
        if (carries) {
          const [k, u, s, ...rest] = parts;
          assert.deepEqual({ kind: k, user: u, server: s, password: rest.join(':') }, request);
        } else {
          assert.deepEqual(parts, [kind, user, server]);
        }
      }),
    );
  });
});

describe('parseGenericAnswerLine', () => {
  const valid: Array<[string, boolean]> = [
    ['1', true],
    ['0', false],
    ['1\r', true],
    ['0\r', false],
    ['1 ', true],
    ['0   ', false],
    ['1 \r', true],
    ['0\r ', false],
  ];
  for (const [line, answer] of valid) {
    test(`${JSON.stringify(line)} is ${answer}`, () => {
      assert.equal(parseGenericAnswerLine(Buffer.from(line)), answer);
    });
  }

  const invalid = ['', '2', 'yes', 'no', 'true', ' 1', ' 0', '\r1', '10', '01', '11', '1\t', '1 x', '\r', '   ', '１', '1\0'];
  for (const line of invalid) {
    test(`${JSON.stringify(line)} is invalid`, () => {
      assert.equal(parseGenericAnswerLine(Buffer.from(line)), 'invalid');
    });
  }
});

describe('GenericAnswerDecoder', () => {
  test('decodes several answers in one chunk, in order', () => {
    assert.deepEqual(decodeChunks([Buffer.from('1\n0\n0\r\n1  \n')]), [true, false, false, true]);
  });

  test('reports invalid lines without losing its place', () => {
    assert.deepEqual(decodeChunks([Buffer.from('2\nyes\n\n 1\n1\n')]), ['invalid', 'invalid', 'invalid', 'invalid', true]);
  });

  test('holds a partial answer until its newline arrives', () => {
    const decoder = genericCodec.createDecoder();
    const answers: ScriptAnswer[] = [];
    decoder.push(Buffer.from('1'), (a) => answers.push(a));
    assert.equal(answers.length, 0);
    assert.equal(decoder.pending, 1);
    decoder.push(Buffer.from('\r'), (a) => answers.push(a));
    assert.equal(decoder.pending, 2);
    decoder.push(Buffer.from('\n0'), (a) => answers.push(a));
    assert.deepEqual([...answers], [true]);
    assert.equal(decoder.pending, 1);
    decoder.push(Buffer.from('\n'), (a) => answers.push(a));
    assert.deepEqual([...answers], [true, false]);
    assert.equal(decoder.pending, 0);
  });

  test("does not keep a reference to the caller's chunk for the pending bytes", () => {
    const decoder = genericCodec.createDecoder();
    const answers: ScriptAnswer[] = [];
    const chunk = Buffer.from('1\n0');
    decoder.push(chunk, (a) => answers.push(a));
    chunk.fill(0x39); // the caller reuses its buffer
    decoder.push(Buffer.from('\n'), (a) => answers.push(a));
    assert.deepEqual([...answers], [true, false]);
  });

  test('decodes a multi-byte garbage line split inside a character as one invalid answer', () => {
    const bytes = Buffer.from('€\n1\n');
    assert.deepEqual(decodeChunks([bytes.subarray(0, 1), bytes.subarray(1, 2), bytes.subarray(2)]), ['invalid', true]);
  });

  test('throws FramingError for an overlong line without a newline', () => {
    const decoder = genericCodec.createDecoder();
    assert.throws(() => decoder.push(Buffer.alloc(1025, 0x31), () => {}), FramingError);
  });

  test('throws FramingError when an unterminated line grows too long across chunks', () => {
    const decoder = genericCodec.createDecoder();
    decoder.push(Buffer.alloc(1000, 0x20), () => {});
    assert.equal(decoder.pending, 1000);
    assert.throws(
      () => decoder.push(Buffer.alloc(100, 0x20), () => {}),
      (error: unknown) => {
        assert.ok(error instanceof FramingError);
        assert.equal(error.name, 'FramingError');
        return true;
      },
    );
  });

  test('accepts an unterminated line up to 1024 bytes', () => {
    const decoder = genericCodec.createDecoder();
    decoder.push(Buffer.alloc(1024, 0x20), () => {});
    assert.equal(decoder.pending, 1024);
  });

  test('answers before an overlong line in the same chunk are still delivered', () => {
    const decoder = genericCodec.createDecoder();
    const answers: ScriptAnswer[] = [];
    assert.throws(() => decoder.push(Buffer.concat([Buffer.from('1\n0\n'), Buffer.alloc(2000, 0x78)]), (a) => answers.push(a)), FramingError);
    assert.deepEqual([...answers], [true, false]);
  });

  test('an overlong line that does end in a newline is never an answer', () => {
    const answers = decodeChunks([Buffer.from(`1${' '.repeat(1100)}\n0\n`)]);
    assert.deepEqual([...answers], ['invalid', false]);
  });

  test('decoders from the codec are independent', () => {
    const a = genericCodec.createDecoder();
    const b = genericCodec.createDecoder();
    assert.notEqual(a, b);
    a.push(Buffer.from('1'), () => {});
    assert.equal(a.pending, 1);
    assert.equal(b.pending, 0);
  });

  // Answer lines a script might write, none longer than the 1024-byte line limit.
  const answerLine = fc.oneof(
    fc.constantFrom('1', '0', '1\r', '0\r', '1 ', '0  \r', '2', 'yes', '', ' 1', '€', '1\r\r'),
    fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\n')),
  );
  const expectedAnswer = (line: string): ScriptAnswer => {
    const trimmed = line.replace(/[\r ]+$/, '');
    return trimmed === '1' ? true : trimmed === '0' ? false : 'invalid';
  };

  test('property: a stream split at every single byte position decodes to the same answers', () => {
    fc.assert(
      fc.property(fc.array(answerLine, { minLength: 1, maxLength: 8 }), (lines) => {
        const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
        const expected = lines.map(expectedAnswer);
        assert.deepEqual(decodeChunks([bytes]), expected);
        for (let cut = 0; cut <= bytes.length; cut++) {
          assert.deepEqual(decodeChunks(splitAt(bytes, [cut])), expected, `split at ${cut}`);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('property: any chunking, including one byte at a time, decodes to the same answers', () => {
    fc.assert(
      fc.property(fc.array(answerLine, { minLength: 1, maxLength: 12 }), fc.array(fc.nat({ max: 300 }), { maxLength: 20 }), (lines, offsets) => {
        const bytes = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
        const expected = lines.map(expectedAnswer);
        assert.deepEqual(decodeChunks(splitAt(bytes, offsets)), expected);
        const byteByByte = [...bytes].map((b) => Buffer.from([b]));
        assert.deepEqual(decodeChunks(byteByByte), expected);
      }),
      { numRuns: 300 },
    );
  });

  test('property: a trailing partial answer is kept pending, never answered', () => {
    fc.assert(
      fc.property(fc.array(answerLine, { maxLength: 5 }), answerLine, (lines, tail) => {
        const decoder = genericCodec.createDecoder();
        const answers: ScriptAnswer[] = [];
        const complete = Buffer.from(lines.map((l) => `${l}\n`).join(''), 'utf8');
        const partial = Buffer.from(tail, 'utf8');
        decoder.push(Buffer.concat([complete, partial]), (a) => answers.push(a));
        assert.equal(answers.length, lines.length);
        assert.equal(decoder.pending, partial.length);
      }),
    );
  });
});
