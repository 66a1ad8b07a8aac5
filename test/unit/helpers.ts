// Helpers the unit tests share.
import assert from 'node:assert/strict';
import xml, { type Element } from '@xmpp/xml';
import { Failure } from '../../src/core/failure.js';

/** Cuts `bytes` at the given (unsorted, possibly repeated) offsets. */
export function splitAt(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const cuts = [...new Set(offsets.map((o) => Math.min(o, bytes.length)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of cuts) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

/** Asserts that `fn` throws a too-large Failure, and that nothing in it carries `secret`. */
export function assertTooLarge(fn: () => unknown, secret?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Failure, 'a Failure');
    assert.equal(error.reason, 'too-large');
    if (secret !== undefined) {
      assert.ok(!error.detail.includes(secret), 'the failure detail does not carry the password');
      assert.ok(!error.message.includes(secret), 'the error message does not carry the password');
    }
    return true;
  });
}

/** Parses one complete XML document into an element tree with the library's streaming parser. */
export function parseXml(text: string): Element {
  const parser = new xml.Parser();
  let root: Element | null = null;
  let ended = false;
  let failure: unknown = null;
  parser.on('start', (element: Element) => {
    root = element;
  });
  parser.on('element', (element: Element) => {
    // Top-level children are emitted rather than attached to the root: attach them.
    element.parent = root;
    root!.children.push(element);
  });
  parser.on('end', () => {
    ended = true;
  });
  parser.on('error', (error: unknown) => {
    failure = error;
  });
  parser.write(text);
  parser.end();
  if (failure) throw failure;
  assert.ok(root, 'a root element');
  assert.ok(ended, 'the root element is closed');
  return root;
}
