import assert from 'node:assert/strict';
import { describe, mock, test } from 'node:test';
import fc from 'fast-check';
import { SecretMemory } from '../../src/core/redaction.js';
import { StderrRelay, type StderrRelayOptions } from '../../src/worker/stderr-relay.js';

type Event = { line: string } | { suppressed: number };

/** A relay whose output and clock the test owns. */
function harness(options: Partial<StderrRelayOptions> = {}) {
  const events: Event[] = [];
  const clock = { now: 0 };
  const relay = new StderrRelay({
    maxLineChars: 1000,
    burst: 1000,
    linesPerSecond: 1000,
    redact: (line) => line,
    emit: (line) => events.push({ line }),
    suppressed: (count) => events.push({ suppressed: count }),
    now: () => clock.now,
    ...options,
  });
  const lines = () => events.flatMap((e) => ('line' in e ? [e.line] : []));
  return { relay, events, clock, lines };
}

const push = (relay: StderrRelay, text: string) => relay.push(Buffer.from(text, 'utf8'));

describe('StderrRelay: lines', () => {
  test('emits one line per newline', () => {
    const { relay, lines } = harness();
    push(relay, 'first\nsecond\n');
    assert.deepEqual(lines(), ['first', 'second']);
  });

  test('joins a line split across chunks', () => {
    const { relay, lines } = harness();
    push(relay, 'hel');
    assert.deepEqual(lines(), []);
    push(relay, 'lo\nwor');
    assert.deepEqual(lines(), ['hello']);
    push(relay, 'ld');
    push(relay, '\n');
    assert.deepEqual(lines(), ['hello', 'world']);
  });

  test('decodes a UTF-8 character split across chunks', () => {
    const { relay, lines } = harness();
    const bytes = Buffer.from('prix: 5€ ok\n', 'utf8');
    const euro = bytes.indexOf(0xe2);
    relay.push(bytes.subarray(0, euro + 1));
    relay.push(bytes.subarray(euro + 1, euro + 2));
    relay.push(bytes.subarray(euro + 2));
    assert.deepEqual(lines(), ['prix: 5€ ok']);
  });

  test('drops a trailing CR and skips empty lines', () => {
    const { relay, lines } = harness();
    push(relay, 'a\r\n\n\r\nb\n');
    assert.deepEqual(lines(), ['a', 'b']);
  });

  test('flush emits the unterminated rest, once', () => {
    const { relay, lines } = harness();
    push(relay, 'done\npartial');
    assert.deepEqual(lines(), ['done']);
    relay.flush();
    assert.deepEqual(lines(), ['done', 'partial']);
    relay.flush();
    assert.deepEqual(lines(), ['done', 'partial']);
  });

  test('cuts a long line to maxLineChars with a marker giving its length', () => {
    const { relay, lines } = harness({ maxLineChars: 10 });
    push(relay, `${'x'.repeat(25)}\n${'y'.repeat(10)}\n`);
    assert.deepEqual(lines(), [`${'x'.repeat(10)}… (25 chars)`, 'y'.repeat(10)]);
  });

  test('an endless line without newline is relayed in pieces instead of being buffered forever', () => {
    const { relay, lines } = harness({ maxLineChars: 20 });
    for (let i = 0; i < 20; i++) push(relay, 'z'.repeat(1000));
    assert.ok(lines().length >= 1, 'something was relayed before the end of the stream');
    for (const line of lines()) assert.ok(line.length < 60, 'each piece is cut');
  });
});

describe('StderrRelay: rate limiting', () => {
  test('lets a burst through, then suppresses and reports the count before the next line', () => {
    const { relay, events, clock } = harness({ burst: 3, linesPerSecond: 1 });
    for (let i = 1; i <= 10; i++) push(relay, `line ${i}\n`);
    assert.deepEqual(events, [{ line: 'line 1' }, { line: 'line 2' }, { line: 'line 3' }]);
    clock.now += 1000;
    push(relay, 'line 11\n');
    assert.deepEqual(events.slice(3), [{ suppressed: 7 }, { line: 'line 11' }]);
    push(relay, 'line 12\n');
    assert.equal(events.length, 5, 'no token left');
  });

  test('refills at linesPerSecond, not faster', () => {
    const { relay, lines, clock } = harness({ burst: 2, linesPerSecond: 2 });
    push(relay, 'a\nb\nc\n');
    assert.deepEqual(lines(), ['a', 'b']);
    clock.now += 250; // half a token
    push(relay, 'd\n');
    assert.deepEqual(lines(), ['a', 'b']);
    clock.now += 250; // one token in all
    push(relay, 'e\nf\n');
    assert.deepEqual(lines(), ['a', 'b', 'e']);
  });

  test('never refills above the burst', () => {
    const { relay, lines, clock } = harness({ burst: 3, linesPerSecond: 10 });
    clock.now += 100_000;
    for (let i = 0; i < 10; i++) push(relay, `${i}\n`);
    assert.deepEqual(lines(), ['0', '1', '2']);
  });

  test('flush reports lines suppressed at the end of the stream', () => {
    const { relay, events } = harness({ burst: 1, linesPerSecond: 1 });
    push(relay, 'a\nb\nc\n');
    relay.flush();
    assert.deepEqual(events, [{ line: 'a' }, { suppressed: 2 }]);
    relay.flush();
    assert.equal(events.length, 2, 'reported once');
  });

  test('a suppressed count is reported within a second even if the script goes quiet', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { relay, events } = harness({ burst: 1, linesPerSecond: 1 });
      push(relay, 'a\nb\nc\n');
      assert.deepEqual(events, [{ line: 'a' }]);
      mock.timers.tick(999);
      assert.deepEqual(events, [{ line: 'a' }]);
      mock.timers.tick(1);
      assert.deepEqual(events, [{ line: 'a' }, { suppressed: 2 }]);
      relay.flush();
      mock.timers.tick(5000);
      assert.equal(events.length, 2, 'reported once');
    } finally {
      mock.timers.reset();
    }
  });

  test('a count reported with the next line is not reported again by the timer', () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const { relay, events, clock } = harness({ burst: 1, linesPerSecond: 1 });
      push(relay, 'a\nb\n');
      clock.now += 1000;
      push(relay, 'c\n');
      assert.deepEqual(events, [{ line: 'a' }, { suppressed: 1 }, { line: 'c' }]);
      mock.timers.tick(5000);
      relay.flush();
      assert.equal(events.length, 3);
    } finally {
      mock.timers.reset();
    }
  });

  test('empty lines do not use up the budget', () => {
    const { relay, lines } = harness({ burst: 2, linesPerSecond: 1 });
    push(relay, '\n\n\r\n\na\n\nb\n');
    assert.deepEqual(lines(), ['a', 'b']);
  });
});

describe('StderrRelay with SecretMemory: nothing remembered is ever emitted', () => {
  const password = 'correct horse:battery€staple';
  const requestLine = `auth:alice:example.com:${password}`;

  function redactingHarness(maxLineChars: number) {
    const memory = new SecretMemory(8);
    memory.remember(requestLine);
    memory.remember(password);
    return harness({ maxLineChars, redact: (line) => memory.redact(line) });
  }

  test('a line echoing the request has it redacted', () => {
    const { relay, lines } = redactingHarness(1000);
    push(relay, `debug: read ${requestLine}\nchecking ${password} against db\n`);
    assert.deepEqual(lines(), ['debug: read [redacted]', 'checking [redacted] against db']);
  });

  test('a secret split across chunks is still redacted', () => {
    const { relay, lines } = redactingHarness(1000);
    const bytes = Buffer.from(`x ${requestLine} y\n`, 'utf8');
    for (let i = 0; i < bytes.length; i += 3) relay.push(bytes.subarray(i, i + 3));
    assert.deepEqual(lines(), ['x [redacted] y']);
  });

  test('redaction happens before the cut, so a secret at the cut is not half shown', () => {
    for (let at = 0; at <= 30; at++) {
      const { relay, lines } = redactingHarness(20);
      push(relay, `${'.'.repeat(at)}${password}${'.'.repeat(100)}\n`);
      const [line] = lines();
      assert.ok(line !== undefined);
      assert.ok(!line.includes('correct'), `secret at ${at}: ${line}`);
      assert.ok(!line.includes('cor'), `a piece of the secret at ${at}: ${line}`);
    }
  });

  test('property: no emitted line contains a remembered password or request line, whatever the chunking and length', () => {
    const secretText = fc.string({ unit: 'grapheme', minLength: 6, maxLength: 40 }).filter((s) => !s.includes('\n') && s.trim() === s);
    fc.assert(
      fc.property(
        secretText,
        fc.string({ maxLength: 60 }).filter((s) => !s.includes('\n')),
        fc.string({ maxLength: 60 }).filter((s) => !s.includes('\n')),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(fc.nat({ max: 4000 }), { maxLength: 12 }),
        fc.boolean(),
        (pw, before, after, padding, maxLineChars, offsets, echoWholeLine) => {
          const memory = new SecretMemory(8);
          const line = `auth:alice:example.com:${pw}`;
          memory.remember(line);
          memory.remember(pw);
          const { relay, lines } = harness({ maxLineChars, redact: (l) => memory.redact(l) });
          const text = `${before}${'-'.repeat(padding)}${echoWholeLine ? line : pw}${after}\nnext ${pw}\n`;
          const bytes = Buffer.from(text, 'utf8');
          const cuts = [...new Set(offsets.map((o) => Math.min(o, bytes.length)))].sort((a, b) => a - b);
          let start = 0;
          for (const cut of cuts) {
            relay.push(bytes.subarray(start, cut));
            start = cut;
          }
          relay.push(bytes.subarray(start));
          relay.flush();
          const emitted = lines();
          assert.ok(emitted.length >= 2);
          for (const out of emitted) {
            assert.ok(!out.includes(pw), `password in ${JSON.stringify(out)}`);
            assert.ok(!out.includes(line), `request line in ${JSON.stringify(out)}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  // A line longer than the relay's 8 KiB partial-line buffer is relayed in pieces, and each piece
  // is redacted on its own: a secret that straddles the cut is matched in neither piece.
  test('a secret straddling the 8 KiB partial-line limit is not leaked in pieces', () => {
    const { relay, lines } = redactingHarness(500);
    const padding = 'y'.repeat(8190);
    // The script writes one long line in two writes; the pipe delivers them as two chunks.
    const cut = requestLine.length - 10;
    push(relay, `${padding} ${requestLine.slice(0, cut)}`);
    push(relay, `${requestLine.slice(cut)} end\n`);
    relay.flush();
    const tail = requestLine.slice(cut);
    for (const out of lines()) {
      assert.ok(!out.includes(tail), `a piece of the password, ${JSON.stringify(tail)}, in ${JSON.stringify(out)}`);
    }
  });

  test('a request line longer than 8 KiB (ejabberd allows 65535 bytes) is not shown even in part', () => {
    const longPassword = 'S'.repeat(20_000);
    const longLine = `auth:alice:example.com:${longPassword}`;
    const memory = new SecretMemory(8);
    memory.remember(longLine);
    memory.remember(longPassword);
    const { relay, lines } = harness({ maxLineChars: 500, redact: (l) => memory.redact(l) });
    // Written by a script with a 4 KiB stdio buffer, or read from the pipe in pieces.
    const bytes = Buffer.from(`got ${longLine}\n`);
    for (let i = 0; i < bytes.length; i += 4096) relay.push(bytes.subarray(i, i + 4096));
    relay.flush();
    for (const out of lines()) assert.ok(!out.includes('S'.repeat(16)), `password text in ${JSON.stringify(out.slice(0, 80))}…`);
  });
});
