// The one secret redaction the daemon's script stderr and check-script's output share.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SecretMemory } from '../../src/core/redaction.js';

describe('SecretMemory', () => {
  test('replaces every occurrence of what it remembers', () => {
    const memory = new SecretMemory(4);
    memory.remember('hunter2');
    assert.equal(memory.redact('pw=hunter2, again hunter2'), 'pw=[redacted], again [redacted]');
    assert.equal(memory.redact('nothing here'), 'nothing here');
  });

  test('a whole request line goes, not just the password inside it', () => {
    const memory = new SecretMemory(4);
    memory.remember('auth:alice:example.com:hunter2');
    memory.remember('hunter2');
    const out = memory.redact('got auth:alice:example.com:hunter2 from stdin');
    assert.equal(out, 'got [redacted] from stdin');
    assert.ok(!out.includes('alice'));
  });

  test('forgets the oldest when full', () => {
    const memory = new SecretMemory(2);
    memory.remember('one');
    memory.remember('two');
    memory.remember('three');
    assert.equal(memory.redact('one two three'), 'one [redacted] [redacted]');
  });

  test('an empty string is not remembered and does not push anything out', () => {
    const memory = new SecretMemory(1);
    memory.remember('secret');
    memory.remember('');
    assert.equal(memory.redact('a secret b'), 'a [redacted] b');
  });

  test('redacts regex-special characters literally', () => {
    const memory = new SecretMemory(2);
    memory.remember('a.b*c$(x)');
    assert.equal(memory.redact('aXbc a.b*c$(x)'), 'aXbc [redacted]');
  });
});

describe('SecretMemory: transformed forms of a password', () => {
  // Quotes of both kinds, a backslash, a slash, URL-special characters, non-ASCII from three
  // UTF-8 lengths, a character outside the BMP and a non-printable one (U+00A0).
  const pw = 's3cr\'et ä€😀"\\/+&=%\u00a0x';
  const memory = new SecretMemory(8);
  memory.remember(`auth:alice:example.com:${pw}`);
  memory.remember(pw);

  // Each form as Python 3.11 and Node 20 print it (copied from their output).
  const forms: Array<[string, string, string]> = [
    ['Python repr() of the str', `'s3cr\\'et ä€😀"\\\\/+&=%\\xa0x'`, `'[redacted]'`],
    ['Python repr() of the bytes', `b's3cr\\'et \\xc3\\xa4\\xe2\\x82\\xac\\xf0\\x9f\\x98\\x80"\\\\/+&=%\\xc2\\xa0x'`, `b'[redacted]'`],
    ['json.dumps (ASCII only)', `"s3cr'et \\u00e4\\u20ac\\ud83d\\ude00\\"\\\\/+&=%\\u00a0x"`, '"[redacted]"'],
    ['JSON.stringify', `"s3cr'et ä€😀\\"\\\\/+&=%\u00a0x"`, '"[redacted]"'],
    ['util.inspect', `\`s3cr'et ä€😀"\\\\/+&=%\u00a0x\``, '`[redacted]`'],
    ['urllib.parse.quote', 's3cr%27et%20%C3%A4%E2%82%AC%F0%9F%98%80%22%5C/%2B%26%3D%25%C2%A0x', '[redacted]'],
    ['urllib.parse.quote_plus', 's3cr%27et+%C3%A4%E2%82%AC%F0%9F%98%80%22%5C%2F%2B%26%3D%25%C2%A0x', '[redacted]'],
    ['percent-encoding in lower case', 's3cr%27et%20%c3%a4%e2%82%ac%f0%9f%98%80%22%5c/%2b%26%3d%25%c2%a0x', '[redacted]'],
    ['encodeURIComponent', "s3cr'et%20%C3%A4%E2%82%AC%F0%9F%98%80%22%5C%2F%2B%26%3D%25%C2%A0x", '[redacted]'],
    ['URLSearchParams', 'p=s3cr%27et+%C3%A4%E2%82%AC%F0%9F%98%80%22%5C%2F%2B%26%3D%25%C2%A0x', 'p=[redacted]'],
    ['a backslash before every special character', 's3cr\\\'et\\ ä€😀\\"\\\\\\/\\+\\&\\=\\%\u00a0x', '[redacted]'],
    ['base64', 'czNjcidldCDDpOKCrPCfmIAiXC8rJj0lwqB4', '[redacted]'],
    // Its UTF-8 bytes read as Latin-1 (Python: pw.encode().decode('latin-1')), as is and repr()d.
    ['Latin-1 mojibake', 's3cr\'et \u00c3\u00a4\u00e2\u0082\u00ac\u00f0\u009f\u0098\u0080"\\/+&=%\u00c2\u00a0x', '[redacted]'],
    ['Python repr() of the Latin-1 mojibake', `'s3cr\\'et Ã¤â\\x82¬ð\\x9f\\x98\\x80"\\\\/+&=%Â\\xa0x'`, `'[redacted]'`],
    ['Windows-1252 mojibake', 's3cr\'et Ã¤â‚¬ðŸ˜€"\\/+&=%Â\u00a0x', '[redacted]'],
  ];
  for (const [name, printed, expected] of forms) {
    test(name, () => {
      assert.equal(memory.redact(`got ${printed} here`), `got ${expected} here`);
    });
  }

  test('the whole request line, repr()d, goes too', () => {
    const line = `auth:alice:example.com:${pw}`;
    const out = memory.redact(`read ${JSON.stringify(line)}`);
    assert.equal(out, 'read "[redacted]"');
  });

  test('base64url, and base64 with its + and / (a password chosen to produce them)', () => {
    const other = new SecretMemory(2);
    other.remember('pa??>>w~~rd?>');
    assert.equal(other.redact('b64 cGE/Pz4+d35+cmQ/Pg== end'), 'b64 [redacted]g== end');
    assert.equal(other.redact('b64url cGE_Pz4-d35-cmQ_Pg end'), 'b64url [redacted]g end');
  });

  test('base64 of a text that holds the password at any offset (an HTTP Basic header)', () => {
    for (const user of ['a', 'al', 'ali', 'alice', 'alice1']) {
      const encoded = Buffer.from(`${user}:${pw}`).toString('base64');
      const out = memory.redact(`Authorization: Basic ${encoded}`);
      // Only the characters that also carry bits of the user name or the end may remain.
      const start = Math.ceil(((user.length + 1) * 8) / 6) + 1;
      for (let i = start; i + 8 <= encoded.length - 3; i++) {
        assert.ok(!out.includes(encoded.slice(i, i + 8)), `${user}: ${encoded.slice(i, i + 8)} left in ${out}`);
      }
    }
  });

  test('ordinary text, and escapes of other text, are left alone', () => {
    const text = 'user alice logged in: 100% ok, path C:\\x\\y, "quoted\\u0041" a+b=c czNjcmV0';
    assert.equal(memory.redact(text), text);
  });

  test('a short password does not turn its base64 fragments into redactions of ordinary words', () => {
    const short = new SecretMemory(2);
    short.remember('ab');
    assert.equal(short.redact('YWI= Ym YW'), 'YWI= Ym YW');
  });

  test('property: no common transformed form of a remembered password survives, whatever the password', () => {
    // Passwords as requests carry them: any text without control characters.
    const passwordText = fc.string({ unit: 'grapheme', minLength: 6, maxLength: 30 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
    const transforms: Array<[string, (pw: string) => string]> = [
      ['JSON', (pw) => JSON.stringify(pw)],
      ['JSON, ASCII only', (pw) => JSON.stringify(pw).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)],
      ['encodeURIComponent', encodeURIComponent],
      ['form encoding', (pw) => new URLSearchParams({ p: pw }).toString().slice(2)],
      ['percent, lower case', (pw) => encodeURIComponent(pw).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
      [
        'bytes as \\x escapes',
        (pw) => [...Buffer.from(pw)].map((b) => (b < 0x80 && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join(''),
      ],
      ['backslash before every non-word character', (pw) => pw.replace(/[^\w]/g, '\\$&')],
      ['base64', (pw) => Buffer.from(pw).toString('base64')],
      ['base64url', (pw) => Buffer.from(pw).toString('base64url')],
    ];
    fc.assert(
      fc.property(passwordText, fc.constantFrom(...transforms), fc.string({ maxLength: 20 }), (pw, [name, transform], prefix) => {
        const ring = new SecretMemory(4);
        ring.remember(`auth:alice:example.com:${pw}`);
        ring.remember(pw);
        const printed = transform(pw);
        const out = ring.redact(`${prefix.replace(/[\\%+]/g, '')} ${name}: ${printed} end`);
        assert.ok(out.includes('[redacted]'), `${name} of ${JSON.stringify(pw)} not redacted: ${out}`);
        assert.ok(!out.includes(printed), `${name} of ${JSON.stringify(pw)} left in ${out}`);
        assert.ok(!out.includes(pw), `${JSON.stringify(pw)} left in ${out}`);
      }),
      { numRuns: 500 },
    );
  });

  test('the forms are recomputed when a slot is reused', () => {
    const ring = new SecretMemory(1);
    ring.remember('first-secret');
    assert.equal(ring.redact('"first\\u002dsecret"'), '"[redacted]"');
    ring.remember('second-secret');
    assert.equal(ring.redact('"first\\u002dsecret" "second\\u002dsecret"'), '"first\\u002dsecret" "[redacted]"');
  });

  test('a secret too long for a per-character pattern still has its JSON and percent forms caught', () => {
    const long = `${'ä'.repeat(1500)}"end`;
    const ring = new SecretMemory(1);
    ring.remember(long);
    assert.equal(ring.redact(`j ${JSON.stringify(long)}`), 'j "[redacted]"');
    assert.equal(ring.redact(`u ${encodeURIComponent(long)}`), 'u [redacted]');
  });

  test('a full ring (what a worker keeps) redacts a line quickly enough to stay off the hot path', () => {
    const ring = new SecretMemory(2 * (256 + 1024));
    for (let i = 0; i < 1280; i++) {
      ring.remember(`auth:user${i}:example.com:password-${i}-ä`);
      ring.remember(`password-${i}-ä`);
    }
    // The first line builds every pattern; a later one reuses them. Both must still be right.
    assert.equal(ring.redact('x password-7-\\xe4 y'), 'x [redacted] y');
    assert.equal(ring.redact('x password%2D1279%2D%C3%A4 y'), 'x [redacted] y');
  });
});

describe('SecretMemory: raw bytes (what check-script dumps of stdout)', () => {
  const pw = 'Pä€ss';
  const memory = new SecretMemory(2);
  memory.remember(pw);

  test('the password’s own UTF-8 bytes are masked byte for byte, so a hex dump keeps its length', () => {
    const bytes = Buffer.concat([Buffer.from('got '), Buffer.from(pw), Buffer.from('\n')]);
    const out = memory.redactBytes(bytes);
    assert.equal(out.length, bytes.length);
    assert.equal(out.toString('latin1'), `got ${'*'.repeat(Buffer.byteLength(pw))}\n`);
  });

  test('every text form is masked in bytes too: repr of str and bytes, base64, mojibake', () => {
    const forms = [`'P\\xe4\\u20acss'`, `b'P\\xc3\\xa4\\xe2\\x82\\xacss'`, Buffer.from(pw).toString('base64'), `'PÃ¤â\\x82¬ss'`];
    for (const form of forms) {
      const out = memory.redactBytes(Buffer.from(`[${form}]`, 'utf8'));
      assert.doesNotMatch(out.toString('latin1'), /P\\x|UMOk|Ã/, `${form} left in ${out.toString('latin1')}`);
      assert.match(out.toString('latin1'), /\*{4}/, form);
    }
  });

  test('bytes without a secret come back as they are', () => {
    const bytes = Buffer.from([0, 2, 0, 1, 0xff]);
    assert.equal(memory.redactBytes(bytes), bytes);
  });
});
