import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { ScriptCodec } from '../../src/codec/codec.js';
import { genericCodec } from '../../src/codec/generic.js';
import { taggedCodec } from '../../src/codec/tagged.js';
import type { AuthRequest } from '../../src/core/auth-request.js';
import { Failure, type Outcome } from '../../src/core/failure.js';
import { ScriptPool, type RestartReason } from '../../src/pool/script-pool.js';
import { ScriptWorker } from '../../src/worker/script-worker.js';
import { captureLog, COMMAND, FakeLauncher, request, settle, tick, useFakeTime, type FakeProcess } from './fake-script.js';

const TIMEOUT = 1000;

interface Reply {
  outcome: Outcome | undefined;
  at: number | undefined;
  arrivedAt: number;
}

function reasonOf(reply: Reply): Exclude<Outcome, Failure> | string | undefined {
  return reply.outcome instanceof Failure ? reply.outcome.reason : reply.outcome;
}

function setup(options: { processes?: number; depth?: number; queueLimit?: number; codec?: ScriptCodec } = {}) {
  const codec = options.codec ?? genericCodec;
  const launcher = new FakeLauncher();
  const { log, messages, lines } = captureLog();
  const restarted: RestartReason[] = [];
  const pool = new ScriptPool({
    processes: options.processes ?? 1,
    depth: options.depth ?? 1,
    queueLimit: options.queueLimit ?? 100,
    timeoutMs: TIMEOUT,
    codec,
    log,
    onRestart: (reason) => restarted.push(reason),
    createWorker: ({ id, depth }, events) =>
      new ScriptWorker(
        { id, depth, command: COMMAND, codec, launch: launcher.launch, timeoutMs: TIMEOUT, log, restartDelay: () => 0, closeGraceMs: 50 },
        events,
      ),
  });
  const ask = (req: AuthRequest = request('auth'), arrivedAt = performance.now()): Reply => {
    const reply: Reply = { outcome: undefined, at: undefined, arrivedAt };
    pool.submit(req, arrivedAt, (outcome) => {
      assert.equal(reply.outcome, undefined, 'settled once');
      reply.outcome = outcome;
      reply.at = performance.now();
    });
    return reply;
  };
  return { pool, launcher, ask, messages, lines, restarted };
}

async function running(options: Parameters<typeof setup>[0] = {}) {
  const s = setup(options);
  s.pool.start();
  await settle();
  return s;
}

/** The fake process each request line went to, in order of writing. */
function linesOf(proc: FakeProcess): string[] {
  return proc.lines();
}

describe('ScriptPool', () => {
  let restoreTime: () => void;
  beforeEach(() => (restoreTime = useFakeTime()));
  afterEach(() => restoreTime());

  test('each request goes to the least busy process', async () => {
    const { launcher, ask } = await running({ processes: 3, depth: 4 });
    const [p1, p2, p3] = launcher.processes as [FakeProcess, FakeProcess, FakeProcess];
    for (let i = 0; i < 4; i++) ask(request('auth', `u${i}`));
    assert.deepEqual(
      [p1, p2, p3].map((p) => linesOf(p).length),
      [2, 1, 1],
    );
    p2.say('1\n');
    ask(request('auth', 'u4'));
    assert.equal(linesOf(p2).length, 2, 'the one that answered is least busy');
  });

  test('lockstep: waits in arrival order for a free process', async () => {
    const { launcher, ask, pool } = await running();
    const a = ask(request('auth', 'a'));
    const b = ask(request('auth', 'b'));
    const c = ask(request('auth', 'c'));
    assert.equal(pool.queueDepth, 2);
    assert.equal(pool.inFlight, 1);
    const proc = launcher.last;
    proc.say('1\n');
    assert.equal(reasonOf(a), true);
    assert.match(linesOf(proc)[1]!, /^auth:b:/);
    proc.say('0\n');
    proc.say('1\n');
    assert.deepEqual([reasonOf(b), reasonOf(c)], [false, true]);
    assert.equal(pool.pending, 0);
  });

  test('beyond the queue limit a request is turned away at once as overloaded', async () => {
    const { ask } = await running({ queueLimit: 2 });
    const replies = [ask(), ask(), ask(), ask()];
    assert.deepEqual(replies.map(reasonOf), [undefined, undefined, undefined, 'overloaded']);
  });

  test('a request too large for the protocol never takes a place', async () => {
    const { ask, pool } = await running();
    const big = ask({ kind: 'auth', user: 'a', server: 'example.com', password: 'x'.repeat(5000) });
    assert.equal(reasonOf(big), 'too-large');
    assert.equal(pool.pending, 0);
  });

  describe('one deadline per request, from its arrival', () => {
    test('the wait in the queue counts: a request that waited gets what is left, not a fresh timeout', async () => {
      const { launcher, ask } = await running();
      const first = ask(request('auth', 'first'));
      await tick(700);
      const second = ask(request('auth', 'second'));
      // The first is answered at 900 ms; the second waited 200 ms and has 800 ms left.
      await tick(200);
      launcher.last.say('1\n');
      assert.equal(reasonOf(first), true);
      assert.match(linesOf(launcher.last)[1]!, /^auth:second:/);
      await tick(799);
      assert.equal(reasonOf(second), undefined);
      await tick(1);
      assert.equal(reasonOf(second), 'timeout');
      assert.equal(second.at! - second.arrivedAt, TIMEOUT, 'answered exactly at arrival + timeout');
    });

    test('a request still queued at its deadline is answered timeout', async () => {
      const { ask } = await running();
      ask();
      const queued = ask(request('auth'), performance.now() - 600);
      await tick(399);
      assert.equal(reasonOf(queued), undefined);
      await tick(1);
      assert.equal(reasonOf(queued), 'timeout');
    });

    test('an auth stranded on a hung process is retried on another and can still succeed within the bound', async () => {
      const { launcher, ask, restarted } = await running({ processes: 2, depth: 3 });
      const [p1, p2] = launcher.processes as [FakeProcess, FakeProcess];
      const hang = ask(request('auth', 'hang'));
      const busy = ask(request('auth', 'busy'));
      assert.equal(linesOf(p1).length, 1);
      assert.equal(linesOf(p2).length, 1);
      await tick(600);
      p2.say('1\n');
      assert.equal(reasonOf(busy), true);
      // Least busy first, the lower number on a tie: p2, p1, p2, p1.
      ask(request('auth', 'filler1'));
      const stranded = ask(request('auth', 'stranded'));
      ask(request('auth', 'filler2'));
      const setpass = ask(request('setpass', 'stranded'));
      assert.deepEqual(
        linesOf(p1)
          .slice(1)
          .map((l) => l.split(':').slice(0, 2).join(':')),
        ['auth:stranded', 'setpass:stranded'],
      );
      await tick(400);
      assert.equal(reasonOf(hang), 'timeout');
      assert.deepEqual(restarted, ['timeout']);
      assert.equal(reasonOf(setpass), 'crashed', 'a setpass is never sent twice');
      assert.equal(reasonOf(stranded), undefined, 'retried, 600 ms of its budget left');
      assert.match(linesOf(p2).at(-1)!, /^auth:stranded:/, 'on the other process');
      await tick(100);
      p2.say('1\n1\n1\n');
      assert.equal(reasonOf(stranded), true);
      assert.ok(stranded.at! - stranded.arrivedAt <= TIMEOUT, 'within one timeout of its arrival');
    });

    test('a retry does not get a fresh timeout: it ends at the request’s own deadline', async () => {
      const { launcher, ask } = await running({ processes: 2, depth: 2 });
      const [p1, p2] = launcher.processes as [FakeProcess, FakeProcess];
      ask(request('auth', 'hang'));
      ask(request('auth', 'busy'));
      await tick(600);
      p2.say('1\n');
      ask(request('auth', 'filler'));
      const stranded = ask(request('auth', 'stranded'));
      assert.equal(linesOf(p1).length, 2);
      await tick(400);
      assert.match(linesOf(p2).at(-1)!, /^auth:stranded:/);
      await tick(599);
      assert.equal(reasonOf(stranded), undefined);
      await tick(1);
      assert.equal(reasonOf(stranded), 'timeout');
      assert.equal(stranded.at! - stranded.arrivedAt, TIMEOUT);
    });

    test('drain resolves once every request taken is answered, at the latest at its deadline', async () => {
      const { ask, pool } = await running();
      ask();
      ask();
      let drained = false;
      void pool.drain().then(() => (drained = true));
      const late = ask();
      assert.equal(reasonOf(late), 'stopping');
      await tick(TIMEOUT - 1);
      assert.equal(drained, false);
      await tick(1);
      assert.equal(drained, true);
    });
  });

  test('when no process can be started, waiting requests fail with cannot-start instead of timing out', async () => {
    const s = setup({ processes: 2 });
    s.launcher.spawnError = 'ENOENT';
    const queued = s.ask();
    s.pool.start();
    await settle();
    assert.equal(reasonOf(queued), 'cannot-start');
    assert.equal(reasonOf(s.ask()), 'cannot-start');
    assert.equal(s.restarted.filter((r) => r === 'cannot-start').length, 2);
  });

  test('close answers what waits with stopping and closes every process', async () => {
    const { ask, pool, launcher } = await running();
    const a = ask();
    const b = ask();
    await pool.close();
    assert.deepEqual([reasonOf(a), reasonOf(b)], ['stopping', 'stopping']);
    assert.ok(launcher.processes.every((p) => p.inputClosed));
  });

  test('killAll sends SIGKILL to every process at once', async () => {
    const { pool, launcher } = await running({ processes: 3 });
    pool.killAll();
    assert.deepEqual(
      launcher.processes.map((p) => p.signals),
      [['SIGKILL'], ['SIGKILL'], ['SIGKILL']],
    );
  });

  test('pause and resume stop and start reading every process, including later ones', async () => {
    const { pool, launcher } = await running({ processes: 2 });
    pool.pause();
    assert.deepEqual(
      launcher.processes.map((p) => p.paused),
      [true, true],
    );
    launcher.processes[0]!.exit({ code: 1, signal: null });
    await tick(0);
    await settle();
    assert.equal(launcher.processes.length, 3);
    assert.equal(launcher.last.paused, true);
    pool.resume();
    assert.deepEqual(
      launcher.running.map((p) => p.paused),
      [false, false],
    );
  });

  test('metrics: queue depth, in flight, processes up and restarts by reason', async () => {
    const { pool, ask, launcher, restarted } = await running({ processes: 2 });
    assert.equal(pool.processesUp, 2);
    ask();
    ask();
    ask();
    assert.deepEqual([pool.queueDepth, pool.inFlight, pool.pending], [1, 2, 3]);
    launcher.processes[0]!.exit({ code: 1, signal: null });
    assert.equal(pool.processesUp, 1);
    launcher.processes[1]!.say('1\n1\n');
    assert.deepEqual(Object.fromEntries(pool.restarts), { exited: 1, 'unsolicited-output': 1 });
    assert.deepEqual(restarted, ['exited', 'unsolicited-output']);
    await tick(0);
    await settle();
    assert.equal(pool.processesUp, 2);
  });

  describe('rolling restart', () => {
    test('replaces every process without failing a request: new requests go to the new one, the old one answers what it holds', async () => {
      const { pool, ask, launcher, messages } = await running({ processes: 2, depth: 4 });
      const [old1, old2] = launcher.processes as [FakeProcess, FakeProcess];
      const oldPids = pool.pids;
      const held = [ask(request('auth', 'h1')), ask(request('auth', 'h2'))];
      const rolling = pool.restartAll();
      await settle();
      assert.equal(launcher.processes.length, 3, 'a new process is started first');
      const new1 = launcher.last;
      const during = ask(request('auth', 'during'));
      assert.match(linesOf(new1)[0]!, /^auth:during:/, 'new requests go to the new process');
      assert.equal(old1.inputClosed, false, 'the old one is not closed while it holds a request');
      old1.say('1\n');
      new1.say('0\n');
      await settle();
      assert.equal(old1.inputClosed, true);
      assert.equal(launcher.processes.length, 4);
      old2.say('1\n');
      await settle();
      assert.equal(old2.inputClosed, false, 'kept until the new process has shown it works');
      // Asked nothing, it shows it by staying up a moment.
      await tick(TIMEOUT);
      await rolling;
      assert.deepEqual([...held, during].map(reasonOf), [true, true, false]);
      assert.equal(old2.inputClosed, true);
      assert.deepEqual(old1.signals.concat(old2.signals), [], 'closed by EOF, never killed');
      assert.notDeepEqual(pool.pids, oldPids);
      assert.deepEqual(pool.pids, [launcher.processes[2]!.pid, launcher.processes[3]!.pid]);
      assert.ok(messages().includes('rolling restart done'));
      assert.deepEqual(Object.fromEntries(pool.restarts), { rolling: 2 });
    });

    test('if a new process does not start, the old ones keep serving', async () => {
      const { pool, ask, launcher, messages } = await running();
      const old = launcher.last;
      launcher.spawnError = 'EACCES';
      await pool.restartAll();
      assert.ok(messages().some((m) => m.startsWith('rolling restart stopped')));
      assert.equal(old.inputClosed, false);
      const reply = ask();
      old.say('1\n');
      assert.equal(reasonOf(reply), true);
    });

    test('a new process that dies on its first request replaces nothing: the old one is put back', async () => {
      const { pool, ask, launcher, messages } = await running();
      const old = launcher.last;
      const rolling = pool.restartAll();
      await settle();
      const fresh = launcher.last;
      const first = ask();
      assert.equal(linesOf(fresh).length, 1);
      fresh.exit({ code: 1, signal: null });
      await rolling;
      assert.equal(reasonOf(first), 'crashed');
      assert.ok(messages().some((m) => m.startsWith('rolling restart stopped')));
      assert.equal(old.inputClosed, false);
      const next = ask();
      assert.equal(linesOf(old).length, 1, 'the old process serves again');
      old.say('1\n');
      assert.equal(reasonOf(next), true);
      assert.deepEqual(pool.pids, [old.pid]);
      await tick(0);
      assert.equal(launcher.running.length, 1, 'the failed new worker is not restarted');
    });

    test('a second call while one is under way joins it', async () => {
      const { pool } = await running();
      assert.equal(pool.restartAll(), pool.restartAll());
    });
  });

  test('tagged: each request carries an id unique in the pool; a retried one keeps it', async () => {
    const { ask, launcher } = await running({ processes: 2, depth: 8, codec: taggedCodec });
    const [p1, p2] = launcher.processes as [FakeProcess, FakeProcess];
    ask(request('auth', 'hang'));
    await tick(500);
    ask(request('auth', 'x'));
    const moved = ask(request('auth', 'moved'));
    const movedLine = linesOf(p1).find((l) => l.includes(':auth:moved:'))!;
    assert.ok(movedLine, 'queued behind the hang');
    const id = movedLine.split(':')[0]!;
    await tick(500);
    assert.ok(linesOf(p2).includes(movedLine), 'retried on the other process with the same id and bytes');
    const ids = [...linesOf(p1), ...linesOf(p2)].map((l) => l.split(':')[0]);
    assert.equal(new Set(ids).size, 3, 'three requests, three ids');
    p2.say(`${id}:1\n`);
    assert.equal(reasonOf(moved), true);
  });
});
