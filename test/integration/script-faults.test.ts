import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Element } from '@xmpp/xml';
import { authIq, nextId } from '../support/fake-server.js';
import { freePorts } from '../support/ports.js';
import { errorOf, resultOf, startHarness, waitForRecord, type Harness } from './harness.js';
import { crashIsAnsweredAtOnce, lateAnswerNeverAnswersTheNext } from './scenarios.js';

const condition = (reply: Parameters<typeof errorOf>[0]) => errorOf(reply).condition;

/** The `nth` request the fixture script recorded for `user` (it records before it answers). */
function recordOf(h: Harness, user: string, nth = 0): Record<string, unknown> {
  const record = h.records().filter((r) => r.user === user)[nth];
  assert.ok(record, `no request ${nth} recorded for ${user}`);
  return record;
}

describe('script faults', () => {
  test('a timeout answers remote-server-timeout, kills the process, and its late answer never answers the next request', async () => {
    await lateAnswerNeverAnswersTheNext();
  });

  test('a crash answers internal-server-error at once, not at the timeout, and the script is restarted', async () => {
    await crashIsAnsweredAtOnce();
  });

  test('a crash loop backs off and keeps answering with errors, then recovers', async () => {
    const h = await startHarness();
    try {
      for (let i = 0; i < 4; i++) assert.equal(condition(await h.ask({ user: 'crash', password: 'x' })), 'internal-server-error');
      const delays = h
        .logs()
        .filter((l) => l.msg === 'restarting script')
        .map((l) => l.delayMs as number);
      assert.equal(delays[0], 0);
      assert.ok(delays.at(-1)! > 0, `backoff grows: ${delays}`);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
    } finally {
      await h.cleanup();
    }
  });

  test('generic: an answer that is neither 1 nor 0 is an error, and what follows it is not trusted', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_BLOCKING: 'false' } });
    try {
      // "echo" answers with its request line, then "1": had the "1" been read as the next
      // answer, the wrong password asked right behind it would have been accepted.
      const [echoed, next] = await Promise.all([h.ask({ user: 'echo', password: 'good' }), h.ask({ user: 'alice', password: 'bad' })]);
      assert.equal(condition(echoed), 'internal-server-error');
      assert.equal(resultOf(next), 'false');
      await h.waitForLog((l) => l.msg === 'script answered neither 1 nor 0; restarting it');
      assert.equal(condition(await h.ask({ user: 'garbage', password: 'good' })), 'internal-server-error');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
    } finally {
      await h.cleanup();
    }
  });

  test('ejabberd: a bad frame is an error and the process is restarted', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROTOCOL: 'ejabberd' }, scriptArgs: ['--protocol', 'ejabberd'] });
    try {
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good:with:colons' })), 'true');
      assert.equal(condition(await h.ask({ user: 'garbage', password: 'good' })), 'internal-server-error');
      await h.waitForLog((l) => l.msg === 'script output is not valid protocol; restarting it');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
    } finally {
      await h.cleanup();
    }
  });

  test('an extra answer (output with nothing outstanding) restarts the process; later answers stay right', async () => {
    const h = await startHarness();
    try {
      assert.equal(resultOf(await h.ask({ user: 'double', password: 'x' })), 'true');
      await h.waitForLog((l) => typeof l.msg === 'string' && /restarting it/.test(l.msg as string));
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
    } finally {
      await h.cleanup();
    }
  });

  test('an extra answer in a read of its own, while nothing else is asked, is caught too', async () => {
    const h = await startHarness();
    try {
      assert.equal(resultOf(await h.ask({ user: 'double20', password: 'x' })), 'true');
      await h.waitForLog((l) => l.msg === 'script wrote output while no request was outstanding; restarting it');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
    } finally {
      await h.cleanup();
    }
  });

  test('output before any request is unsolicited: the process is restarted', async () => {
    const h = await startHarness({ scriptArgs: ['--banner'] });
    try {
      await h.waitForLog((l) => l.msg === 'script wrote output while no request was outstanding; restarting it');
    } finally {
      await h.cleanup();
    }
  });

  test('on a timeout, other auth/isuser requests on that process are retried on a healthy one within their deadline; setpass gets an error and is never sent twice', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_TIMEOUT: '2.5', EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'false' } });
    try {
      const recordsOf = (user: string, kind = 'auth') => h.records().filter((r) => r.user === user && r.kind === kind);
      // Both idle: the hang goes to process 1.
      const hang = h.ask({ user: 'hang', password: 'x' });
      const hungPid = (await waitForRecord(h, (r) => r.user === 'hang')).pid;
      // Process 2 busy for a while; with one request each, a tie goes to process 1.
      const spacer = h.ask({ user: 'slow1200', password: 'good' });
      await waitForRecord(h, (r) => r.user === 'slow1200');
      const setpassOnHung = h.ask({ kind: 'setpass', user: 'slow100', password: 'n1' });
      assert.equal((await waitForRecord(h, (r) => r.kind === 'setpass' && r.password === 'n1')).pid, hungPid, 'the setpass is queued behind the hang');
      // Once the spacer is answered, requests spread over both processes, some behind the hang.
      // They arrived well after the hang, so they still have time when the hung process is killed.
      assert.equal(resultOf(await spacer), 'true');
      const others = [];
      for (let i = 0; i < 6; i++) others.push(h.ask({ user: 'slow100', password: i % 2 ? 'good' : 'bad' }));
      const setpassAnywhere = h.ask({ kind: 'setpass', user: 'slow100', password: 'n2' });
      assert.equal(condition(await hang), 'remote-server-timeout');
      assert.deepEqual((await Promise.all(others)).map(resultOf), ['false', 'true', 'false', 'true', 'false', 'true']);
      const onHung = recordsOf('slow100').filter((r) => r.pid === hungPid);
      assert.ok(onHung.length >= 1, 'some auth requests were queued behind the hang');
      assert.equal(recordsOf('slow100').length, 6 + onHung.length, 'each one stranded was asked again, once, of another process');
      // A setpass may have changed something before the process was lost: never sent twice.
      assert.equal(condition(await setpassOnHung), 'internal-server-error');
      const n2 = await setpassAnywhere;
      const n2Records = recordsOf('slow100', 'setpass').filter((r) => r.password === 'n2');
      assert.equal(n2Records.length, 1);
      if (n2Records[0]!.pid === hungPid) assert.equal(condition(n2), 'internal-server-error');
      else assert.equal(resultOf(n2), 'true');
      assert.equal(recordsOf('slow100', 'setpass').filter((r) => r.password === 'n1').length, 1);
      const kill = await h.waitForLog((l) => l.msg === 'script did not answer in time; killing it');
      assert.equal(kill.requeued, onHung.length, 'the auth requests were handed back');
      assert.ok((kill.failed as number) >= 1, 'the setpass was not');
    } finally {
      await h.cleanup();
    }
  });

  test('pipelined requests on one process are answered in order, each with its own answer', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_BLOCKING: 'false' } });
    try {
      const asks = [];
      for (let i = 0; i < 200; i++) asks.push(h.ask({ user: i % 7 === 0 ? 'slow5' : `u${i}`, password: i % 3 === 0 ? 'good' : 'bad' }));
      const results = (await Promise.all(asks)).map(resultOf);
      assert.deepEqual(
        results,
        Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 'true' : 'false')),
      );
    } finally {
      await h.cleanup();
    }
  });

  test('lockstep with several processes spreads requests and answers each correctly', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_PROCESSES: '3' } });
    try {
      const asks = [];
      for (let i = 0; i < 30; i++) asks.push(h.ask({ user: 'slow20', password: i % 2 ? 'good' : 'bad' }));
      assert.deepEqual(
        (await Promise.all(asks)).map(resultOf),
        Array.from({ length: 30 }, (_, i) => (i % 2 ? 'true' : 'false')),
      );
    } finally {
      await h.cleanup();
    }
  });

  test('too many waiting requests get wait/resource-constraint', async () => {
    const h = await startHarness({ env: { EXTERNAL_AUTH_QUEUE: '3', EXTERNAL_AUTH_TIMEOUT: '1' } });
    try {
      const asks = [];
      for (let i = 0; i < 6; i++) asks.push(h.ask({ user: 'hang', password: 'x' }));
      const conditions = (await Promise.all(asks)).map(condition);
      // One is in the script, three wait, two are turned away at once.
      assert.equal(conditions.filter((c) => c === 'resource-constraint').length, 2, `${conditions}`);
      assert.equal(conditions.filter((c) => c === 'remote-server-timeout').length, 4, `${conditions}`);
      const reply = (await Promise.all(asks)).find((r) => condition(r) === 'resource-constraint')!;
      assert.equal(errorOf(reply).type, 'wait');
    } finally {
      await h.cleanup();
    }
  });
});

describe('tagged protocol', () => {
  const TAGGED = { env: { EXTERNAL_AUTH_PROTOCOL: 'tagged' }, scriptArgs: ['--protocol', 'tagged'] };

  test('one process works on many requests at once; answers in any order reach their own requests', async () => {
    const h = await startHarness(TAGGED);
    try {
      const asks = [];
      for (let i = 0; i < 200; i++) asks.push(h.ask({ user: `slow${(i * 37) % 50}`, password: i % 3 === 0 ? 'good' : 'bad' }));
      const results = (await Promise.all(asks)).map(resultOf);
      assert.deepEqual(
        results,
        Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 'true' : 'false')),
      );
      assert.equal(new Set(h.records().map((r) => r.pid)).size, 1, 'one process');
      const ids = h.records().map((r) => r.id as string);
      assert.ok(ids.every((id) => /^[0-9a-z]{1,16}$/.test(id)));
      assert.equal(new Set(ids).size, ids.length, 'every request its own id');
    } finally {
      await h.cleanup();
    }
  });

  test('ID:E is wait/internal-server-error and the process is kept', async () => {
    const h = await startHarness(TAGGED);
    try {
      const reply = await h.ask({ user: 'backend', password: 'good' });
      assert.deepEqual([errorOf(reply).type, errorOf(reply).condition], ['wait', 'internal-server-error']);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
      assert.equal(new Set(h.records().map((r) => r.pid)).size, 1, 'answered by the same process');
      assert.ok(!h.logs().some((l) => l.msg === 'restarting script'));
      assert.ok(h.logs().some((l) => l.msg === 'script reported that its backend failed'));
    } finally {
      await h.cleanup();
    }
  });

  test('a doubled answer can never answer another request: it is dropped with a warning, the process kept', async () => {
    const h = await startHarness(TAGGED);
    try {
      const [dbl, mallory] = await Promise.all([h.ask({ user: 'double', password: 'x' }), h.ask({ user: 'mallory', password: 'wrong' })]);
      assert.equal(resultOf(dbl), 'true');
      assert.equal(resultOf(mallory), 'false');
      const pid = recordOf(h, 'double').pid;
      await h.waitForLog((l) => l.msg === 'script answered a request id that is not in flight; answer dropped');
      assert.equal(resultOf(await h.ask({ user: 'mallory', password: 'wrong' })), 'false');
      assert.equal(recordOf(h, 'mallory', 1).pid, pid, 'the same process answered');
      assert.ok(!h.logs().some((l) => l.msg === 'restarting script'));
    } finally {
      await h.cleanup();
    }
  });

  test('an answer with an id that is not in flight answers nothing: its request times out, the process is kept', async () => {
    const h = await startHarness(TAGGED);
    try {
      assert.equal(condition(await h.ask({ user: 'wrongid', password: 'good' })), 'remote-server-timeout');
      const warned = await h.waitForLog((l) => l.msg === 'script answered a request id that is not in flight; answer dropped');
      const sent = recordOf(h, 'wrongid');
      assert.equal(warned.answerId, `${sent.id}x`, 'the warning names the id, and nothing else of the line');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good' })), 'true');
      assert.equal(recordOf(h, 'alice').pid, sent.pid);
    } finally {
      await h.cleanup();
    }
  });

  test('a script that doubles some answers under many concurrent requests: every request answered right, no restart, each stray counted', async () => {
    const [port] = await freePorts(1);
    const h = await startHarness({ ...TAGGED, env: { ...TAGGED.env, HTTP_LISTEN: `127.0.0.1:${port}`, EXTERNAL_AUTH_TIMEOUT: '20' } });
    try {
      const asks = Array.from({ length: 400 }, (_, i) => {
        const user = i % 3 === 0 ? `twice${i}` : `user${i}`;
        const good = i % 2 === 0;
        return { user, good, reply: h.ask({ user, password: good ? 'good' : 'bad' }) };
      });
      for (const ask of asks) assert.equal(resultOf(await ask.reply), String(ask.good), ask.user);
      const doubled = asks.filter((ask) => ask.user.startsWith('twice')).length;
      await h.waitForLogs((lines) => lines.filter((l) => l.msg === 'script answered a request id that is not in flight; answer dropped').length === doubled);
      assert.ok(!h.logs().some((l) => l.msg === 'restarting script'), 'no restart');
      assert.equal(new Set(h.records().map((r) => r.pid)).size, 1, 'one process answered them all');
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, new RegExp(`^extauth_script_stray_answers_total ${doubled}$`, 'm'));
    } finally {
      await h.cleanup();
    }
  });

  test('a timed-out request on a process that keeps answering: timeout for it, its late answer ignored, the process kept', async () => {
    const h = await startHarness({ ...TAGGED, env: { ...TAGGED.env, EXTERNAL_AUTH_TIMEOUT: '1' } });
    try {
      const slow = h.ask({ user: 'slow1500', password: 'good' });
      await waitForRecord(h, (r) => r.user === 'slow1500');
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
      assert.equal(condition(await slow), 'remote-server-timeout');
      await h.waitForLog((l) => l.msg === 'late answer to a timed-out request ignored' && l.level === 40);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'bad' })), 'false');
      assert.ok(!h.logs().some((l) => l.msg === 'restarting script'));
      assert.equal(new Set(h.records().map((r) => r.pid)).size, 1);
    } finally {
      await h.cleanup();
    }
  });

  test('chaos: crashes, hangs past the timeout, doubled answers and backend errors under load; every request answered once, none with another’s answer', async () => {
    const h = await startHarness({ ...TAGGED, env: { ...TAGGED.env, EXTERNAL_AUTH_TIMEOUT: '1', EXTERNAL_AUTH_PROCESSES: '2' } });
    try {
      const faults: Record<number, string> = { 7: 'double', 13: 'crash', 21: 'slow1500', 33: 'backend' };
      const sent: Array<{ id: string; user: string; good: boolean; reply: Promise<Element> }> = [];
      for (let wave = 0; wave < 6; wave++) {
        const replies = [];
        for (let i = wave * 100; i < (wave + 1) * 100; i++) {
          const user = faults[i % 50] ?? `u${i}`;
          const good = (i * 7919) % 3 !== 0;
          const id = nextId();
          const reply = h.server.request(authIq({ id, user, password: good ? `good-${i}` : `bad-${i}` }), id);
          sent.push({ id, user, good, reply });
          replies.push(reply);
        }
        await Promise.all(replies);
      }
      let answered = 0;
      for (const { id, user, good, reply } of sent) {
        const r = await reply;
        const result = resultOf(r);
        const failure = condition(r);
        assert.equal(h.server.received.filter((el) => el.attrs.id === id).length, 1, `one reply to ${user}`);
        if (user === 'crash') assert.equal(failure, 'internal-server-error');
        else if (user === 'backend') assert.equal(failure, 'internal-server-error');
        else if (user === 'slow1500') assert.ok(failure === 'remote-server-timeout' || failure === 'internal-server-error', `${failure}`);
        else if (result !== undefined) {
          // The script's truth: a good password (or the doubled user, who always passes) is accepted.
          assert.equal(result, user === 'double' || good ? 'true' : 'false', `${user} got another request's answer`);
          answered++;
        } else assert.ok(failure === 'internal-server-error' || failure === 'remote-server-timeout', `${failure}`);
      }
      assert.ok(answered > sent.length / 2, `most requests answered (${answered} of ${sent.length})`);
    } finally {
      await h.cleanup();
    }
  });
});
