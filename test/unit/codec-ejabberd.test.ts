import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { AuthRequest, RequestKind } from '../../src/core/auth-request.js';
import { FramingError, type ScriptAnswer } from '../../src/codec/codec.js';
import { ejabberdCodec } from '../../src/codec/ejabberd.js';
import { requestFields } from '../../src/codec/request-fields.js';

// Everything through the codec's public face: what the worker uses.
const EJABBERD_MAX_REQUEST_BYTES = ejabberdCodec.maxRequestBytes;
const encodeEjabberdRequest = (request: AuthRequest) => ejabberdCodec.encode(requestFields(request));
import { codecFor } from '../../src/codec/index.js';
import { assertTooLarge, splitAt } from './helpers.js';

const FALSE_FRAME = [0x00, 0x02, 0x00, 0x00];
const TRUE_FRAME = [0x00, 0x02, 0x00, 0x01];

function frames(answers: readonly boolean[]): Buffer {
  return Buffer.from(answers.flatMap((a) => (a ? TRUE_FRAME : FALSE_FRAME)));
}

/** Feeds chunks to one decoder; returns the answers and the error thrown, if any. */
function decode(chunks: readonly Buffer[], decoder = ejabberdCodec.createDecoder()): { answers: ScriptAnswer[]; error: unknown } {
  const answers: ScriptAnswer[] = [];
  try {
    for (const chunk of chunks) decoder.push(chunk, (a) => answers.push(a));
  } catch (error) {
    return { answers, error };
  }
  return { answers, error: undefined };
}

function frameOf(fields: string): Buffer {
  const body = Buffer.from(fields, 'utf8');
  const head = Buffer.alloc(2);
  head.writeUInt16BE(body.length);
  return Buffer.concat([head, body]);
}

describe('encodeEjabberdRequest', () => {
  const cases: Array<[AuthRequest, string]> = [
    [{ kind: 'auth', user: 'alice', server: 'example.com', password: 'secret' }, 'auth:alice:example.com:secret'],
    [{ kind: 'isuser', user: 'alice', server: 'example.com' }, 'isuser:alice:example.com'],
    [{ kind: 'setpass', user: 'bob', server: 'example.org', password: 'n3w' }, 'setpass:bob:example.org:n3w'],
    [{ kind: 'tryregister', user: 'carol', server: 'example.net', password: 'pw' }, 'tryregister:carol:example.net:pw'],
    [{ kind: 'removeuser', user: 'dave', server: 'example.com' }, 'removeuser:dave:example.com'],
  ];
  for (const [request, fields] of cases) {
    test(`encodes ${request.kind} as a length prefix and ${JSON.stringify(fields)}`, () => {
      const bytes = encodeEjabberdRequest(request);
      assert.deepEqual(bytes, Buffer.concat([Buffer.from([0x00, fields.length]), Buffer.from(fields)]));
    });
  }

  test('has no newline or other terminator after the fields', () => {
    const bytes = encodeEjabberdRequest({ kind: 'isuser', user: 'a', server: 'b' });
    assert.equal(bytes.length, 2 + 'isuser:a:b'.length);
    assert.equal(bytes.subarray(2).toString(), 'isuser:a:b');
  });

  test('writes the length big-endian', () => {
    const password = 'x'.repeat(300);
    const bytes = encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password });
    // 9 + 300 = 309 = 0x0135
    assert.equal(bytes[0], 0x01);
    assert.equal(bytes[1], 0x35);
    assert.equal(bytes.length, 311);
  });

  test('keeps colons in the password', () => {
    const bytes = encodeEjabberdRequest({ kind: 'auth', user: 'alice', server: 'example.com', password: ':a:b:' });
    assert.deepEqual(bytes, frameOf('auth:alice:example.com::a:b:'));
  });

  test('the prefix counts UTF-8 bytes, not characters', () => {
    const password = '€😀ä';
    const bytes = encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password });
    // 'auth:u:s:' 9 bytes + € 3 + 😀 4 + ä 2 = 18 bytes, 13 UTF-16 units.
    assert.equal(bytes.readUInt16BE(0), 18);
    assert.equal(bytes.length, 20);
    assert.equal(bytes.subarray(2).toString('utf8'), `auth:u:s:${password}`);
  });

  test(`accepts exactly ${EJABBERD_MAX_REQUEST_BYTES} bytes`, () => {
    const password = 'p'.repeat(EJABBERD_MAX_REQUEST_BYTES - 'auth:u:s:'.length);
    const bytes = encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password });
    assert.equal(bytes.readUInt16BE(0), 0xffff);
    assert.equal(bytes.length, 0xffff + 2);
    assert.equal(bytes.subarray(2).toString('utf8'), `auth:u:s:${password}`);
  });

  test(`rejects ${EJABBERD_MAX_REQUEST_BYTES + 1} bytes with modify/policy-violation`, () => {
    const password = 'p'.repeat(EJABBERD_MAX_REQUEST_BYTES - 'auth:u:s:'.length + 1);
    assertTooLarge(() => encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password }), password);
  });

  test('counts multi-byte characters by their bytes against the limit', () => {
    // 9 + 21842 * 3 = 65535: fits.
    const fits = '€'.repeat(21842);
    assert.equal(encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password: fits }).readUInt16BE(0), 65535);
    // One more byte: 65536, which a 2-byte prefix cannot say (it would wrap to 0).
    const tooLong = `${fits}a`;
    assert.ok(`auth:u:s:${tooLong}`.length < EJABBERD_MAX_REQUEST_BYTES);
    assertTooLarge(() => encodeEjabberdRequest({ kind: 'auth', user: 'u', server: 's', password: tooLong }), tooLong);
  });

  test('the codec object describes the ejabberd protocol', () => {
    assert.equal(ejabberdCodec.name, 'ejabberd');
    assert.equal(ejabberdCodec.maxRequestBytes, 65535);
    assert.equal(codecFor('ejabberd'), ejabberdCodec);
    assert.deepEqual(ejabberdCodec.encode('isuser:a:b'), frameOf('isuser:a:b'));
    assert.ok(Object.isFrozen(ejabberdCodec));
  });

  test('property: the prefix is the byte length, and splitting the body on the first colons gives the fields back', () => {
    const noColon = fc.string({ unit: 'binary', maxLength: 30 }).filter((s) => !s.includes(':'));
    const kind = fc.constantFrom<RequestKind>('auth', 'isuser', 'setpass', 'tryregister', 'removeuser');
    const colonful = fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 8 }), fc.constant(':')), { maxLength: 10 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(kind, noColon, noColon, fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), colonful), (kind, user, server, pw) => {
        const carries = kind === 'auth' || kind === 'setpass' || kind === 'tryregister';
        const request: AuthRequest = carries ? { kind, user, server, password: pw } : { kind, user, server };
        const bytes = encodeEjabberdRequest(request);
        assert.equal(bytes.readUInt16BE(0), bytes.length - 2);
        const parts = bytes.subarray(2).toString('utf8').split(':');
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

describe('EjabberdAnswerDecoder', () => {
  test('00 02 00 00 is false and 00 02 00 01 is true', () => {
    assert.deepEqual(decode([Buffer.from(FALSE_FRAME)]), { answers: [false], error: undefined });
    assert.deepEqual(decode([Buffer.from(TRUE_FRAME)]), { answers: [true], error: undefined });
  });

  test('decodes several frames in one chunk, in order', () => {
    assert.deepEqual(decode([frames([true, false, false, true])]).answers, [true, false, false, true]);
  });

  test('still decodes right after a frame split across chunks', () => {
    const decoder = ejabberdCodec.createDecoder();
    const answers: ScriptAnswer[] = [];
    decoder.push(Buffer.from([0x00, 0x02]), (a) => answers.push(a));
    assert.equal(decoder.pending, 2);
    assert.equal(answers.length, 0);
    decoder.push(Buffer.from([0x00, 0x01, 0x00]), (a) => answers.push(a));
    assert.deepEqual([...answers], [true]);
    assert.equal(decoder.pending, 1);
    decoder.push(Buffer.from([0x02, 0x00]), (a) => answers.push(a));
    decoder.push(Buffer.from([0x00]), (a) => answers.push(a));
    assert.deepEqual([...answers], [true, false]);
    assert.equal(decoder.pending, 0);
    decoder.push(frames([true]), (a) => answers.push(a));
    assert.deepEqual([...answers], [true, false, true]);
  });

  const bad: Array<[string, number[]]> = [
    ['a wrong length (00 03 ...)', [0x00, 0x03, 0x00, 0x01]],
    ['a wrong length (00 01 01)', [0x00, 0x01, 0x01]],
    ['a wrong first byte', [0x01, 0x02, 0x00, 0x01]],
    ['a non-zero third byte', [0x00, 0x02, 0x01, 0x00]],
    ['00 02 00 02', [0x00, 0x02, 0x00, 0x02]],
    ['00 02 00 ff', [0x00, 0x02, 0x00, 0xff]],
    ['ASCII "1\\n" as a generic script would answer', [0x31, 0x0a]],
    ['a 4-byte length (00 00 00 02 00 01)', [0x00, 0x00, 0x00, 0x02, 0x00, 0x01]],
  ];
  for (const [name, bytes] of bad) {
    test(`throws FramingError for ${name}`, () => {
      const { answers, error } = decode([Buffer.from(bytes)]);
      assert.ok(error instanceof FramingError, `got ${String(error)}`);
      assert.equal(answers.length, 0);
    });
  }

  test('delivers the answers before a bad frame, then throws', () => {
    const { answers, error } = decode([Buffer.concat([frames([true, false]), Buffer.from([0x00, 0x02, 0x00, 0x02])])]);
    assert.deepEqual([...answers], [true, false]);
    assert.ok(error instanceof FramingError);
  });

  test('catches a bad byte as soon as it arrives, without waiting for a whole frame', () => {
    const decoder = ejabberdCodec.createDecoder();
    decoder.push(Buffer.from([0x00]), () => {});
    assert.throws(() => decoder.push(Buffer.from([0x07]), () => {}), FramingError);
  });

  test('decoders from the codec are independent', () => {
    const a = ejabberdCodec.createDecoder();
    const b = ejabberdCodec.createDecoder();
    const answers: ScriptAnswer[] = [];
    a.push(Buffer.from([0x00, 0x02]), () => {});
    b.push(Buffer.from(TRUE_FRAME), (x) => answers.push(x));
    assert.deepEqual([...answers], [true]);
    assert.equal(a.pending, 2);
    assert.equal(b.pending, 0);
  });

  test('property: a stream of frames split at every byte position decodes to the same answers', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 10 }), (expected) => {
        const bytes = frames(expected);
        for (let cut = 0; cut <= bytes.length; cut++) {
          assert.deepEqual(decode(splitAt(bytes, [cut])), { answers: expected, error: undefined }, `split at ${cut}`);
        }
      }),
      { numRuns: 200 },
    );
  });

  test('property: any chunking decodes to the same answers', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 30 }), fc.array(fc.nat({ max: 130 }), { maxLength: 40 }), (expected, offsets) => {
        assert.deepEqual(decode(splitAt(frames(expected), offsets)), { answers: expected, error: undefined });
      }),
      { numRuns: 300 },
    );
  });

  test('property: one wrong byte anywhere throws FramingError under any chunking, after the answers before it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        fc.array(fc.nat({ max: 40 }), { maxLength: 10 }),
        (expected, where, value, offsets) => {
          const bytes = frames(expected);
          const index = where % bytes.length;
          const allowed = index % 4 === 1 ? [0x02] : index % 4 === 3 ? [0x00, 0x01] : [0x00];
          fc.pre(!allowed.includes(value));
          const corrupt = Buffer.from(bytes);
          corrupt[index] = value;
          const { answers, error } = decode(splitAt(corrupt, offsets));
          assert.ok(error instanceof FramingError);
          assert.deepEqual([...answers], expected.slice(0, Math.floor(index / 4)));
        },
      ),
      { numRuns: 300 },
    );
  });
});
