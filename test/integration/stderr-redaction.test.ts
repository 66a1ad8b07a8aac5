import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { resultOf, ROOT, startHarness } from './harness.js';

// A password with quotes, a backslash, a space, URL-special characters and non-ASCII, so that
// every transformed form differs from the plain text.
const PASSWORD = `it's "my" p\\ss wörd+&=€`;

test("a script's stderr is logged with the password redacted in its repr, JSON, percent-encoded, base64 and Latin-1 mojibake forms", async () => {
  const h = await startHarness({ command: path.join(ROOT, 'test/fixtures/scripts/leaky.py'), env: { EXTERNAL_AUTH_PROTOCOL: 'generic' } });
  try {
    assert.equal(resultOf(await h.ask({ user: 'alice', password: PASSWORD })), 'true');
    await h.waitForLog((l) => typeof l.stderr === 'string' && l.stderr.startsWith('latin1 repr'));
    const lines = h.logs().flatMap((l) => (typeof l.stderr === 'string' ? [l.stderr] : []));
    assert.equal(lines.length, 9);
    const forms = [
      PASSWORD,
      JSON.stringify(PASSWORD).slice(1, -1),
      encodeURIComponent(PASSWORD),
      new URLSearchParams({ p: PASSWORD }).toString().slice(2),
      Buffer.from(PASSWORD).toString('base64').slice(0, 12),
      'p\\\\ss', // the backslash doubled, as repr and JSON write it
      'w\\xc3\\xb6rd', // bytes repr
      'w%C3%B6rd',
      // UTF-8 read as Latin-1 (mojibake), as is and in repr (U+0080-U+009F become \\x escapes)
      Buffer.from(PASSWORD).toString('latin1'),
      'wÃ¶rd',
      'â\\x82¬',
    ];
    for (const line of lines) {
      assert.ok(line.includes('[redacted]'), `nothing redacted in ${line}`);
      for (const form of forms) assert.ok(!line.includes(form), `${JSON.stringify(form)} in ${line}`);
    }
    // What is not secret stays readable.
    assert.ok(lines.some((l) => l.includes('"user": "alice"')));
    assert.ok(lines.some((l) => l.startsWith('POST body: user=alice&pw=')));
  } finally {
    await h.cleanup();
  }
});
