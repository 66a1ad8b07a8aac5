// HTTP_LISTEN: /metrics after known traffic through the built component, /health turning 503
// when the server goes away or the scripts keep dying, and the per-query log lines.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { freePorts } from '../support/ports.js';
import { errorOf, resultOf, startHarness, waitForRecord, type Harness } from './harness.js';

async function get(port: number, path: string): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The value of one sample line, e.g. `extauth_requests_total{kind="auth",outcome="true"}`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_:]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = match[2] ? match[2].split(',') : [];
    if (wanted.length === present.length && wanted.every((label) => present.includes(label))) return Number(match[3]);
  }
  return undefined;
}

/** /health, once the component has logged the event that should decide it. */
async function healthAfter(
  port: number,
  h: Harness,
  event: (line: Record<string, unknown>) => boolean,
): Promise<{ status: number; body: Record<string, unknown> }> {
  await h.waitForLog(event);
  const res = await get(port, '/health');
  assert.match(res.type, /^application\/json/);
  return { status: res.status, body: JSON.parse(res.text) as Record<string, unknown> };
}

describe('HTTP_LISTEN: /metrics and /health', () => {
  test('/metrics counts known traffic by kind and outcome, with no user or password in it', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ env: { HTTP_LISTEN: `127.0.0.1:${port}`, EXTERNAL_AUTH_TIMEOUT: '1.5' } });
    try {
      await h.waitForLog((l) => l.msg === 'serving /metrics and /health over HTTP');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-horse-battery' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-2' })), 'true');
      assert.equal(resultOf(await h.ask({ user: 'bob', password: 'wrong-pw' })), 'false');
      assert.equal(resultOf(await h.ask({ kind: 'isuser', user: 'nobody-here' })), 'false');
      assert.equal(errorOf(await h.ask({ user: 'hang', password: 'x' })).condition, 'remote-server-timeout');
      assert.equal(errorOf(await h.ask({ user: 'crash', password: 'x' })).condition, 'internal-server-error');
      assert.equal(errorOf(await h.ask({ user: 'a:b', password: 'x' })).condition, 'bad-request');

      const res = await get(port!, '/metrics');
      assert.equal(res.status, 200);
      assert.match(res.type, /^text\/plain/);
      const m = res.text;
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'auth', outcome: 'true' }), 2);
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'auth', outcome: 'false' }), 1);
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'isuser', outcome: 'false' }), 1);
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'auth', outcome: 'remote-server-timeout' }), 1);
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'auth', outcome: 'internal-server-error' }), 1);
      assert.equal(sample(m, 'extauth_requests_total', { kind: 'auth', outcome: 'bad-request' }), 1);
      assert.equal(sample(m, 'extauth_request_duration_seconds_count', { kind: 'auth' }), 6);
      assert.equal(sample(m, 'extauth_request_duration_seconds_count', { kind: 'isuser' }), 1);
      assert.ok(sample(m, 'extauth_request_duration_seconds_sum', { kind: 'auth' })! >= 1, 'the timeout took at least a second');
      assert.equal(sample(m, 'extauth_script_restarts_total', { reason: 'timeout' }), 1);
      assert.equal(sample(m, 'extauth_script_restarts_total', { reason: 'exited' }), 1);
      assert.equal(sample(m, 'extauth_xmpp_connected'), 1);
      assert.equal(sample(m, 'extauth_xmpp_reconnects_total'), 0);
      assert.equal(sample(m, 'extauth_queue_depth'), 0);
      assert.equal(sample(m, 'extauth_queue_limit'), 10000, 'EXTERNAL_AUTH_QUEUE, by default 10000');
      assert.equal(sample(m, 'extauth_in_flight'), 0);
      assert.ok(sample(m, 'process_resident_memory_bytes')! > 0, "Node's default process metrics");
      assert.ok(sample(m, 'nodejs_eventloop_lag_seconds') !== undefined);
      for (const secret of ['alice', 'bob', 'good-horse-battery', 'wrong-pw', 'nobody-here']) assert.ok(!m.includes(secret), `${secret} is not in /metrics`);

      // In flight: a slow answer is visible while it lasts.
      const slow = h.ask({ user: 'slow1000', password: 'good' });
      // Once the script has it (after the crash above, its process may first be restarting).
      await waitForRecord(h, (r) => r.user === 'slow1000');
      assert.equal(sample((await get(port!, '/metrics')).text, 'extauth_in_flight'), 1);
      assert.equal(resultOf(await slow), 'true');

      assert.equal((await get(port!, '/nope')).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await h.cleanup();
    }
  });

  test('one info line per answered query (kind, user, server, outcome, ms), failures at warn, ISO times, never the password', async () => {
    const h = await startHarness({ env: { LOG_LEVEL: 'info' } });
    try {
      await h.ask({ user: 'alice', password: 'good-secret-1' });
      await h.ask({ user: 'hang', password: 'good-secret-2' });
      const answered = h.logs().filter((l) => l.msg === 'query answered');
      assert.equal(answered.length, 1);
      const { level, kind, user, server, outcome, ms } = answered[0]!;
      assert.deepEqual({ level, kind, user, server, outcome }, { level: 30, kind: 'auth', user: 'alice', server: 'example.com', outcome: true });
      assert.equal(typeof ms, 'number');
      const failed = await h.waitForLog((l) => l.msg === 'query failed');
      assert.equal(failed.level, 40);
      assert.equal(failed.outcome, 'remote-server-timeout');
      assert.equal(failed.user, 'hang');
      for (const line of h.logs()) assert.match(String(line.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO 8601 time');
      assert.ok(!h.output().includes('good-secret'), 'no password in the log');
    } finally {
      await h.cleanup();
    }
  });

  test('a script that times out without writing anything: the log names both usual causes and check-script', async () => {
    // An ejabberd-protocol script left on the default generic protocol waits for the rest of a frame.
    const h = await startHarness({ scriptArgs: ['--protocol', 'ejabberd'], env: { EXTERNAL_AUTH_TIMEOUT: '1' } });
    try {
      assert.equal(errorOf(await h.ask({ user: 'alice', password: 'good' })).condition, 'remote-server-timeout');
      const warning = await h.waitForLog((l) => typeof l.hint === 'string');
      assert.match(String(warning.hint), /flush after each answer, or set EXTERNAL_AUTH_PTY=true/);
      assert.match(String(warning.hint), /another protocol than EXTERNAL_AUTH_PROTOCOL=generic/);
      assert.match(String(warning.hint), /check-script/);
    } finally {
      await h.cleanup();
    }
  });

  test('/health is 200 when connected with a script answering, 503 saying why when the server goes away', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ env: { HTTP_LISTEN: `${port}` } });
    try {
      const { status, body: ok } = await healthAfter(port!, h, (l) => l.msg === 'connected');
      assert.equal(status, 200);
      assert.equal(ok.status, 'ok');
      assert.equal(ok.connected, true);
      assert.equal(ok.processesUp, 1);
      assert.deepEqual(ok.problems, []);

      h.server.dropConnection();
      await h.server.close();
      const { status: downStatus, body: down } = await healthAfter(port!, h, (l) => l.msg === 'connection lost');
      assert.equal(downStatus, 503);
      assert.equal(down.status, 'unavailable');
      assert.equal(down.connected, false);
      assert.deepEqual(down.problems, ['not connected to the XMPP server']);
      await h.waitForLog((l) => l.msg === 'connecting' && (l.attempt as number) >= 2);
      assert.ok(sample((await get(port!, '/metrics')).text, 'extauth_xmpp_reconnects_total')! >= 1);
      assert.equal(sample((await get(port!, '/metrics')).text, 'extauth_xmpp_connected'), 0);
    } finally {
      await h.cleanup();
    }
  });

  test('/health is 503 when the script keeps exiting at once, which is logged at error with a count', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ command: '/bin/false', env: { HTTP_LISTEN: `${port}` } });
    try {
      const { status, body: down } = await healthAfter(port!, h, (l) => l.msg === 'restarting script' && l.level === 50);
      assert.equal(status, 503);
      assert.equal(down.connected, true);
      assert.equal(down.processesAnswering, 0);
      assert.match(String((down.problems as string[])[0]), /^the auth script keeps failing: restarted \d+ times in a row without answering/);
      const logged = await h.waitForLog((l) => l.msg === 'restarting script' && l.level === 50);
      assert.ok((logged.failuresInARow as number) >= 3);
      assert.match(String(logged.problem), /keeps failing/);
      assert.ok(sample((await get(port!, '/metrics')).text, 'extauth_script_restarts_total', { reason: 'exited' })! >= 3);
    } finally {
      await h.cleanup();
    }
  });
});
