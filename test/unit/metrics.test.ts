import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ComponentMetrics, type ComponentProbe } from '../../src/ops/metrics.js';

const probe: ComponentProbe = {
  queued: () => 4,
  inFlight: () => 3,
  processesUp: () => 2,
  answering: () => ({ processes: 2, failuresInARow: 0 }),
  restarts: () =>
    new Map([
      ['exited', 2],
      ['timeout', 1],
    ]),
  connected: () => true,
  reconnects: () => 5,
  strayAnswers: () => 9,
  cache: () => ({ hits: 7, misses: 3, stale: 2, entries: 6 }),
};

function lines(text: string, prefix: string): string[] {
  return text.split('\n').filter((line) => line.startsWith(prefix));
}

test('answered queries: counts by kind and outcome, and a cumulative latency histogram per kind', async () => {
  const metrics = new ComponentMetrics(probe);
  metrics.answered('auth', 'true', 3);
  metrics.answered('auth', 'true', 0.5);
  metrics.answered('auth', 'remote-server-timeout', 5000);
  metrics.answered('isuser', 'false', 20_000);
  const text = await metrics.registry.metrics();
  assert.deepEqual(lines(text, 'extauth_requests_total{'), [
    'extauth_requests_total{kind="auth",outcome="true"} 2',
    'extauth_requests_total{kind="auth",outcome="remote-server-timeout"} 1',
    'extauth_requests_total{kind="isuser",outcome="false"} 1',
  ]);
  const auth = lines(text, 'extauth_request_duration_seconds_bucket{').filter((l) => l.includes('kind="auth"'));
  assert.equal(auth.length, 14, 'thirteen bounds and +Inf');
  assert.ok(auth.includes('extauth_request_duration_seconds_bucket{le="0.001",kind="auth"} 1'));
  assert.ok(auth.includes('extauth_request_duration_seconds_bucket{le="0.005",kind="auth"} 2'));
  assert.ok(auth.includes('extauth_request_duration_seconds_bucket{le="5",kind="auth"} 3'), 'a bound is inclusive');
  assert.ok(auth.includes('extauth_request_duration_seconds_bucket{le="+Inf",kind="auth"} 3'));
  assert.ok(text.includes('extauth_request_duration_seconds_sum{kind="auth"} 5.0035\n'));
  assert.ok(text.includes('extauth_request_duration_seconds_count{kind="auth"} 3\n'));
  assert.ok(text.includes('extauth_request_duration_seconds_bucket{le="10",kind="isuser"} 0\n'), 'slower than the last bound: only in +Inf');
  assert.ok(text.includes('extauth_request_duration_seconds_bucket{le="+Inf",kind="isuser"} 1\n'));
});

test('gauges and the restart and reconnect counters are read from the probe when scraped', async () => {
  const text = await new ComponentMetrics(probe, { queueLimit: 500 }).registry.metrics();
  for (const line of [
    'extauth_queue_depth 4',
    'extauth_queue_limit 500',
    'extauth_in_flight 3',
    'extauth_script_processes_up 2',
    'extauth_xmpp_connected 1',
    'extauth_xmpp_reconnects_total 5',
    'extauth_script_restarts_total{reason="exited"} 2',
    'extauth_script_restarts_total{reason="timeout"} 1',
    'extauth_cache_hits_total 7',
    'extauth_cache_misses_total 3',
    'extauth_cache_stale_answers_total 2',
    'extauth_cache_entries 6',
  ]) {
    assert.ok(text.includes(`${line}\n`), line);
  }
  assert.ok(text.includes('# TYPE extauth_request_duration_seconds histogram'));
  assert.ok(text.includes('process_cpu_user_seconds_total'), "Node's default process metrics");
});

test('with the cache off, its metrics read zero', async () => {
  const text = await new ComponentMetrics({ ...probe, cache: () => null }).registry.metrics();
  for (const line of ['extauth_cache_hits_total 0', 'extauth_cache_stale_answers_total 0', 'extauth_cache_entries 0'])
    assert.ok(text.includes(`${line}\n`), line);
});
