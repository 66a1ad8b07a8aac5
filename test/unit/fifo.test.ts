import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { Fifo } from '../../src/core/fifo.js';

/** Empties the queue to compare it with the model. */
function assertSame<T>(fifo: Fifo<T>, model: readonly T[], context = ''): void {
  assert.equal(fifo.length, model.length, `length ${context}`);
  assert.equal(fifo.peek(), model[0], `peek ${context}`);
  assert.deepEqual(fifo.drain(), model, `contents ${context}`);
}

describe('Fifo', () => {
  test('starts empty', () => {
    const fifo = new Fifo<number>();
    assert.equal(fifo.length, 0);
    assert.equal(fifo.peek(), undefined);
    assert.equal(fifo.shift(), undefined);
    assert.deepEqual(fifo.drain(), []);
  });

  test('shifts in push order', () => {
    const fifo = new Fifo<string>();
    fifo.push('a');
    fifo.push('b');
    fifo.push('c');
    assert.equal(fifo.length, 3);
    assert.equal(fifo.peek(), 'a');
    assert.equal(fifo.shift(), 'a');
    assert.equal(fifo.shift(), 'b');
    fifo.push('d');
    assert.equal(fifo.length, 2);
    assert.equal(fifo.shift(), 'c');
    assert.equal(fifo.shift(), 'd');
    assert.equal(fifo.shift(), undefined);
    assert.equal(fifo.length, 0);
  });

  test('drain returns everything in order and empties the queue', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 10; i++) fifo.push(i);
    fifo.shift();
    fifo.shift();
    assert.deepEqual(fifo.drain(), [2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(fifo.length, 0);
    assert.equal(fifo.shift(), undefined);
    fifo.push(42);
    assert.deepEqual(fifo.drain(), [42]);
  });

  test('order is preserved through many thousands of interleaved pushes and shifts', () => {
    const fifo = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 300; i++) fifo.push(next++);
      for (let i = 0; i < 250; i++) assert.equal(fifo.shift(), expected++);
    }
    assert.equal(fifo.length, next - expected);
    while (fifo.length > 0) assert.equal(fifo.shift(), expected++);
    assert.equal(expected, next);
  });

  test('holds falsy items like any other', () => {
    const fifo = new Fifo<number | null | string>();
    fifo.push(0);
    fifo.push(null);
    fifo.push('');
    assert.equal(fifo.length, 3);
    assert.equal(fifo.shift(), 0);
    assert.equal(fifo.shift(), null);
    assert.equal(fifo.shift(), '');
    assert.equal(fifo.length, 0);
  });

  type Op =
    | { op: 'push'; value: number }
    | { op: 'pushMany'; count: number }
    | { op: 'shift' }
    | { op: 'shiftMany'; count: number }
    | { op: 'peek' }
    | { op: 'drain' };

  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ op: fc.constant('push' as const), value: fc.integer() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('pushMany' as const), count: fc.integer({ min: 0, max: 1500 }) }) },
    { weight: 4, arbitrary: fc.constant({ op: 'shift' as const }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('shiftMany' as const), count: fc.integer({ min: 0, max: 1500 }) }) },
    { weight: 1, arbitrary: fc.constant({ op: 'peek' as const }) },
    { weight: 1, arbitrary: fc.constant({ op: 'drain' as const }) },
  );

  test('property: behaves like an array used as a queue (push, shift, peek, drain)', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const fifo = new Fifo<number>();
        const model: number[] = [];
        let serial = 0;
        ops.forEach((o, index) => {
          const context = `after op ${index} (${o.op})`;
          switch (o.op) {
            case 'push':
              fifo.push(o.value);
              model.push(o.value);
              break;
            case 'pushMany':
              for (let i = 0; i < o.count; i++) {
                fifo.push(serial);
                model.push(serial++);
              }
              break;
            case 'shift':
              assert.equal(fifo.shift(), model.shift(), context);
              break;
            case 'shiftMany':
              for (let i = 0; i < o.count; i++) assert.equal(fifo.shift(), model.shift(), context);
              break;
            case 'peek':
              assert.equal(fifo.peek(), model[0], context);
              break;
            case 'drain':
              assert.deepEqual(fifo.drain(), model.splice(0), context);
              break;
          }
          assert.equal(fifo.length, model.length, context);
          assert.equal(fifo.peek(), model[0], context);
        });
        assertSame(fifo, model, 'at the end');
      }),
      { numRuns: 150 },
    );
  });
});
