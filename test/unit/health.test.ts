import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkHealth } from '../../src/ops/health.js';
import type { ComponentProbe } from '../../src/ops/metrics.js';
import { FAILING_AFTER_RESTARTS } from '../../src/worker/script-worker.js';

function probe(connected: boolean, processes: { up: number; answering: number; failuresInARow: number }): ComponentProbe {
  return {
    connected: () => connected,
    processesUp: () => processes.up,
    answering: () => ({ processes: processes.answering, failuresInARow: processes.failuresInARow }),
    restarts: () => new Map(),
    queued: () => 0,
    inFlight: () => 2,
    reconnects: () => 0,
    strayAnswers: () => 0,
    cache: () => null,
  };
}

test('healthy: connected with a process up and answering', () => {
  const report = checkHealth(probe(true, { up: 2, answering: 1, failuresInARow: 0 }));
  assert.equal(report.healthy, true);
  assert.deepEqual(report.body, { status: 'ok', connected: true, processesUp: 2, processesAnswering: 1, inFlight: 2, queued: 0, problems: [] });
});

test('not connected, or no process up: unhealthy, each reason said', () => {
  assert.deepEqual(checkHealth(probe(false, { up: 1, answering: 1, failuresInARow: 0 })).body.problems, ['not connected to the XMPP server']);
  assert.deepEqual(checkHealth(probe(true, { up: 0, answering: 0, failuresInARow: 1 })).body.problems, ['no auth script process is up']);
  const both = checkHealth(probe(false, { up: 0, answering: 0, failuresInARow: 0 }));
  assert.equal(both.healthy, false);
  assert.equal(both.body.status, 'unavailable');
  assert.equal(both.body.problems.length, 2);
});

test('processes that are up but fail restart after restart do not count as answering', () => {
  const report = checkHealth(probe(true, { up: 1, answering: 0, failuresInARow: FAILING_AFTER_RESTARTS + 2 }));
  assert.equal(report.healthy, false);
  assert.deepEqual(report.body.problems, [
    `the auth script keeps failing: restarted ${FAILING_AFTER_RESTARTS + 2} times in a row without answering (see the log)`,
  ]);
});
