import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { ScriptCodec } from '../../src/codec/codec.js';
import { genericCodec } from '../../src/codec/generic.js';
import { ejabberdCodec } from '../../src/codec/ejabberd.js';
import { taggedCodec } from '../../src/codec/tagged.js';
import { REQUEST_KINDS, type RequestKind } from '../../src/core/auth-request.js';
import { Failure, type Outcome } from '../../src/core/failure.js';
import type { Job } from '../../src/pool/job.js';
import { ScriptWorker, type RestartReason } from '../../src/worker/script-worker.js';
import { captureLog, COMMAND, FakeLauncher, makeJob, request, settle, tick, useFakeTime } from './fake-script.js';

const TIMEOUT = 1000;
const GRACE = 100;

function reasonOf(outcome: Outcome | undefined): Exclude<Outcome, Failure> | string | undefined {
  return outcome instanceof Failure ? outcome.reason : outcome;
}

function setup(options: { codec?: ScriptCodec; depth?: number } = {}) {
  const codec = options.codec ?? genericCodec;
  const launcher = new FakeLauncher();
  const { log, messages, lines } = captureLog();
  const capacity: number[] = [];
  const stranded: Job[][] = [];
  const restarts: RestartReason[] = [];
  const strays: number[] = [];
  const delays: number[] = [];
  const worker = new ScriptWorker(
    {
      id: 1,
      command: COMMAND,
      codec,
      launch: launcher.launch,
      depth: options.depth ?? 1,
      timeoutMs: TIMEOUT,
      log,
      restartDelay: (failures) => {
        const delay = failures === 0 ? 0 : 100 * 2 ** (failures - 1);
        delays.push(delay);
        return delay;
      },
      closeGraceMs: GRACE,
    },
    {
      capacity: () => capacity.push(performance.now()),
      stranded: (jobs) => stranded.push(jobs),
      restarted: (reason) => restarts.push(reason),
      strayAnswer: () => strays.push(performance.now()),
    },
  );
  const job = (kind: RequestKind = 'auth', deadline = performance.now() + TIMEOUT, user = 'alice') => makeJob(codec, request(kind, user), deadline);
  return { codec, launcher, worker, messages, lines, capacity, stranded, restarts, strays, delays, job };
}

async function started(options: Parameters<typeof setup>[0] = {}) {
  const s = setup(options);
  s.worker.start();
  await settle();
  assert.ok(s.worker.accepting, 'ready after start');
  return s;
}

describe('ScriptWorker', () => {
  let restoreTime: () => void;
  beforeEach(() => (restoreTime = useFakeTime()));
  afterEach(() => restoreTime());

  describe('start and answers', () => {
    test('is not accepting before start, accepts once the process is ready, and says so', async () => {
      const { worker, capacity, launcher } = setup();
      assert.equal(worker.accepting, false);
      assert.equal(worker.up, false);
      worker.start();
      assert.equal(worker.accepting, false, 'not before ready resolves');
      assert.equal(worker.alive, true);
      await settle();
      assert.equal(worker.accepting, true);
      assert.equal(worker.up, true);
      assert.equal(worker.pid, launcher.last.pid);
      assert.equal(capacity.length, 1);
    });

    test('a pty that is not ready yet takes nothing; one that never gets ready is replaced', async () => {
      const { worker, launcher, restarts } = setup();
      launcher.behaviour = { manualReady: true };
      worker.start();
      await settle();
      assert.equal(worker.accepting, false);
      launcher.last.failReady('no raw mode');
      await settle();
      assert.deepEqual(restarts, ['not-ready']);
      assert.deepEqual(launcher.processes[0]!.signals, ['SIGKILL']);
      await tick(0);
      assert.equal(launcher.processes.length, 2);
      launcher.last.becomeReady();
      await settle();
      assert.equal(worker.accepting, true);
    });

    test('writes the request and settles it with the answer; lockstep takes one at a time', async () => {
      const { worker, launcher, job, capacity } = await started();
      const a = job();
      worker.assign(a);
      assert.deepEqual(launcher.last.lines(), ['auth:alice:example.com:secret-pw']);
      assert.equal(worker.accepting, false);
      assert.equal(worker.load, 1);
      assert.throws(() => worker.assign(job()), /not accepting/);
      launcher.last.say('1\n');
      assert.equal(a.outcome, true);
      assert.equal(worker.load, 0);
      assert.equal(worker.accepting, true);
      assert.equal(capacity.length, 2);
      const b = job();
      worker.assign(b);
      launcher.last.say('0\r\n');
      assert.equal(b.outcome, false);
    });

    test('pipelined classic answers settle requests in the order they were written, across chunk boundaries', async () => {
      const { worker, launcher, job } = await started({ depth: 4 });
      const jobs = [job(), job(), job()];
      for (const j of jobs) worker.assign(j);
      launcher.last.say('1\n0');
      assert.deepEqual(
        jobs.map((j) => j.outcome),
        [true, undefined, undefined],
      );
      launcher.last.say('\n1\n');
      assert.deepEqual(
        jobs.map((j) => j.outcome),
        [true, false, true],
      );
    });

    test('ejabberd framing works the same way', async () => {
      const { worker, launcher, job } = await started({ codec: ejabberdCodec });
      const a = job();
      worker.assign(a);
      launcher.last.say(Buffer.from([0, 2, 0]));
      launcher.last.say(Buffer.from([1]));
      assert.equal(a.outcome, true);
    });
  });

  test('script stderr is logged at warn, with the passwords it was sent redacted', async () => {
    const { worker, launcher, job, lines } = await started();
    worker.assign(job());
    launcher.last.handlers.diagnostic(Buffer.from('checking secret-pw for alice\n'));
    const line = lines.find((l) => l.msg === 'script stderr');
    assert.ok(line, 'relayed');
    assert.equal(line.level, 40);
    assert.ok(!String(line.stderr).includes('secret-pw'));
    assert.equal(line.scriptPid, launcher.last.pid);
  });

  describe('answers that cannot be trusted', () => {
    test('output with nothing outstanding restarts the process', async () => {
      const { worker, launcher, restarts, messages } = await started();
      launcher.last.say('hello\n');
      assert.deepEqual(restarts, ['unsolicited-output']);
      assert.ok(messages().includes('script wrote output while no request was outstanding; restarting it'));
      assert.deepEqual(launcher.processes[0]!.signals, ['SIGKILL']);
      assert.equal(worker.accepting, false);
      await tick(0);
      assert.equal(launcher.processes.length, 2);
      assert.equal(worker.accepting, true);
    });

    test('a doubled answer in one read: the first counts, the second restarts the process', async () => {
      const { worker, launcher, job, restarts } = await started();
      const a = job();
      worker.assign(a);
      launcher.last.say('1\n1\n');
      assert.equal(a.outcome, true);
      assert.deepEqual(restarts, ['unsolicited-output']);
    });

    test('the start of an extra answer right behind the expected one restarts the process', async () => {
      const { worker, launcher, job, restarts } = await started();
      const a = job();
      worker.assign(a);
      launcher.last.say('1\n1');
      assert.equal(a.outcome, true);
      assert.deepEqual(restarts, ['unsolicited-output']);
    });

    test('a doubled answer arriving after the answer, before the next request: restart', async () => {
      const { worker, launcher, job, restarts } = await started();
      worker.assign(job());
      launcher.last.say('1\n');
      launcher.last.say('1\n');
      assert.deepEqual(restarts, ['unsolicited-output']);
    });

    test('an invalid answer fails its request; what was behind it is retried if it changes nothing', async () => {
      const { worker, launcher, job, restarts, stranded } = await started({ depth: 4 });
      const a = job();
      const b = job('auth');
      const c = job('setpass');
      for (const j of [a, b, c]) worker.assign(j);
      launcher.last.say('maybe\n1\n');
      assert.equal(reasonOf(a.outcome), 'bad-answer');
      assert.deepEqual(restarts, ['bad-answer']);
      assert.deepEqual(stranded, [[b]]);
      assert.equal(b.outcome, undefined, 'handed back, not answered');
      assert.equal(reasonOf(c.outcome), 'crashed');
    });

    test('ejabberd: a bad frame fails the oldest request and restarts', async () => {
      const { worker, launcher, job, restarts } = await started({ codec: ejabberdCodec });
      const a = job();
      worker.assign(a);
      launcher.last.say(Buffer.from([0, 3]));
      assert.equal(reasonOf(a.outcome), 'bad-answer');
      assert.deepEqual(restarts, ['protocol-error']);
    });
  });

  describe('stranded requests', () => {
    // The same table the worker reads: a kind may be retried exactly when it changes nothing.
    const expected: Record<RequestKind, 'retried' | 'failed'> = {
      auth: 'retried',
      isuser: 'retried',
      setpass: 'failed',
      tryregister: 'failed',
      removeuser: 'failed',
      scram: 'retried',
    };

    test('the retriable kinds are exactly auth, isuser and scram', () => {
      for (const [kind, fate] of Object.entries(expected)) assert.equal(REQUEST_KINDS[kind as RequestKind].idempotent, fate === 'retried', kind);
    });

    for (const [kind, fate] of Object.entries(expected) as Array<[RequestKind, string]>) {
      test(`a ${kind} held by a process that hangs is ${fate}`, async () => {
        const { worker, launcher, job, stranded } = await started({ depth: 4 });
        const hung = job('auth');
        worker.assign(hung);
        await tick(100);
        const other = job(kind);
        worker.assign(other);
        await tick(TIMEOUT - 100);
        assert.equal(reasonOf(hung.outcome), 'timeout');
        assert.deepEqual(launcher.processes[0]!.signals, ['SIGKILL']);
        if (fate === 'retried') {
          assert.deepEqual(stranded, [[other]]);
          assert.equal(other.outcome, undefined);
        } else {
          assert.deepEqual(stranded, []);
          assert.equal(reasonOf(other.outcome), 'crashed');
        }
      });
    }

    test('a request already retried once is not retried again', async () => {
      const { worker, job, stranded, launcher } = await started({ depth: 4 });
      worker.assign(job());
      const again = job();
      again.retried = true;
      worker.assign(again);
      launcher.last.say('nonsense\n');
      assert.deepEqual(stranded, []);
      assert.equal(reasonOf(again.outcome), 'crashed');
    });
  });

  describe('deadlines', () => {
    test('a request is answered timeout at its own deadline, which may come before the process is due', async () => {
      const { worker, launcher, job, restarts } = await started();
      // It waited 600 ms in the queue: 400 ms left.
      const a = job('auth', performance.now() + 400);
      worker.assign(a);
      await tick(399);
      assert.equal(a.outcome, undefined);
      await tick(1);
      assert.equal(reasonOf(a.outcome), 'timeout');
      assert.deepEqual(restarts, [], 'the process still has time: it is not killed');
      assert.equal(worker.accepting, false, 'the timed-out request keeps its place');
      // Its late answer is swallowed instead of answering the next request.
      await tick(300);
      launcher.last.say('1\n');
      assert.equal(a.settleCount, 1);
      assert.deepEqual(restarts, []);
      assert.equal(worker.accepting, true);
      const b = job();
      worker.assign(b);
      launcher.last.say('0\n');
      assert.equal(b.outcome, false);
    });

    test('a process silent for a whole timeout after a request was written is killed and restarted', async () => {
      const { worker, launcher, job, restarts, messages } = await started();
      const a = job('auth', performance.now() + 400);
      worker.assign(a);
      await tick(400);
      assert.equal(reasonOf(a.outcome), 'timeout');
      await tick(TIMEOUT - 401);
      assert.deepEqual(restarts, []);
      await tick(1);
      assert.deepEqual(restarts, ['timeout']);
      assert.ok(messages().includes('script did not answer in time; killing it'));
      assert.deepEqual(launcher.processes[0]!.signals, ['SIGKILL']);
      await tick(0);
      assert.equal(launcher.processes.length, 2);
    });

    test('several deadlines on one process are each kept (one timer, re-armed)', async () => {
      const { worker, launcher, job } = await started({ depth: 4 });
      const a = job('auth', performance.now() + 300);
      const b = job('auth', performance.now() + 200);
      worker.assign(a);
      worker.assign(b);
      await tick(200);
      assert.equal(reasonOf(b.outcome), 'timeout');
      assert.equal(a.outcome, undefined);
      launcher.last.say('1\n');
      assert.equal(a.outcome, true, 'the first answer is the first request’s');
      launcher.last.say('1\n');
      assert.equal(b.settleCount, 1, 'the late answer to the second is swallowed');
      assert.equal(worker.load, 0);
    });
  });

  describe('exits and restarts', () => {
    test('an exit fails what the process held at once and restarts it with growing delays, reset by a good answer', async () => {
      const { worker, launcher, job, restarts, delays } = await started({ depth: 4 });
      const a = job();
      const b = job('isuser');
      worker.assign(a);
      worker.assign(b);
      launcher.last.exit({ code: 3, signal: null });
      assert.equal(reasonOf(a.outcome), 'crashed');
      assert.equal(reasonOf(b.outcome), 'crashed');
      assert.deepEqual(restarts, ['exited']);
      await tick(0);
      assert.equal(launcher.processes.length, 2);
      launcher.last.exit({ code: 3, signal: null });
      await tick(99);
      assert.equal(launcher.processes.length, 2, 'the second restart waits');
      await tick(1);
      assert.equal(launcher.processes.length, 3);
      launcher.last.exit({ code: 3, signal: null });
      await tick(200);
      assert.equal(launcher.processes.length, 4);
      assert.deepEqual(delays, [0, 100, 200]);
      await settle();
      const c = job();
      worker.assign(c);
      launcher.last.say('1\n');
      launcher.last.exit({ code: 0, signal: null });
      assert.deepEqual(delays, [0, 100, 200, 0], 'an answer resets the backoff');
    });

    test('a program that cannot be run fails what it held with cannot-start, and keeps being retried', async () => {
      const { worker, launcher, capacity, restarts } = setup();
      launcher.spawnError = 'ENOENT';
      worker.start();
      await settle();
      assert.equal(worker.startFailed, true);
      assert.equal(worker.alive, false);
      assert.deepEqual(restarts, ['cannot-start']);
      assert.equal(capacity.length, 1, 'the pool is told, so it can fail what waits');
      launcher.spawnError = null;
      await tick(0);
      await settle();
      assert.equal(worker.accepting, true);
      assert.equal(worker.startFailed, false);
    });
  });

  describe('tagged protocol', () => {
    test('answers in any order are matched by id', async () => {
      const { worker, launcher, job } = await started({ codec: taggedCodec, depth: 8 });
      const a = job('auth');
      const b = job('isuser');
      worker.assign(a);
      worker.assign(b);
      assert.deepEqual(launcher.last.lines(), [`${a.tag}:auth:alice:example.com:secret-pw`, `${b.tag}:isuser:alice:example.com`]);
      launcher.last.say(`${b.tag}:0\n`);
      assert.deepEqual([a.outcome, b.outcome], [undefined, false]);
      launcher.last.say(`${a.tag}:1 \r\n`);
      assert.equal(a.outcome, true);
    });

    test('ID:E is a backend error for that request; the process is kept', async () => {
      const { worker, launcher, job, restarts } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      const b = job();
      worker.assign(a);
      worker.assign(b);
      launcher.last.say(`${a.tag}:E\n`);
      assert.equal(reasonOf(a.outcome), 'backend-error');
      assert.deepEqual(restarts, []);
      launcher.last.say(`${b.tag}:1\n`);
      assert.equal(b.outcome, true);
    });

    test('an id not in flight (a doubled answer, a made-up id) is dropped and counted; the process and its other requests are kept', async () => {
      const { worker, launcher, job, restarts, stranded, strays, lines } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      const b = job();
      worker.assign(a);
      worker.assign(b);
      launcher.last.say(`${a.tag}:1\n${a.tag}:0\nzz9:1\n`);
      assert.equal(a.outcome, true);
      assert.equal(a.settleCount, 1);
      assert.equal(b.outcome, undefined, 'b is never answered by a stray line');
      assert.deepEqual(restarts, []);
      assert.deepEqual(stranded, []);
      assert.equal(strays.length, 2);
      const warned = lines.filter((m) => m.msg === 'script answered a request id that is not in flight; answer dropped');
      assert.deepEqual(
        warned.map((m) => m.answerId),
        [a.tag, 'zz9'],
      );
      launcher.last.say(`${b.tag}:0\n`);
      assert.equal(b.outcome, false);
    });

    test('an answer for an id not in flight while nothing is outstanding: dropped, the process kept', async () => {
      const { worker, launcher, job, restarts, strays } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      worker.assign(a);
      launcher.last.say(`${a.tag}:1\n`);
      launcher.last.say(`${a.tag}:1\n`);
      assert.deepEqual(restarts, []);
      assert.equal(strays.length, 1);
      const b = job();
      worker.assign(b);
      launcher.last.say(`${b.tag}:0\n`);
      assert.equal(b.outcome, false);
    });

    test('a line that is not an answer, with an id nobody waits for, still restarts the process', async () => {
      const { worker, launcher, job, restarts, stranded } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      worker.assign(a);
      launcher.last.say('zz9:yes\n');
      assert.deepEqual(restarts, ['bad-answer']);
      assert.deepEqual(stranded, [[a]]);
    });

    test('a line without an id restarts the process and blames no request', async () => {
      const { worker, launcher, job, restarts, stranded } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      const s = job('setpass');
      worker.assign(a);
      worker.assign(s);
      launcher.last.say('1\n');
      assert.deepEqual(restarts, ['protocol-error']);
      assert.deepEqual(stranded, [[a]]);
      assert.equal(reasonOf(s.outcome), 'crashed');
    });

    test('an answer that is not 1, 0 or E fails its request and restarts', async () => {
      const { worker, launcher, job, restarts } = await started({ codec: taggedCodec, depth: 8 });
      const a = job();
      worker.assign(a);
      launcher.last.say(`${a.tag}:yes\n`);
      assert.equal(reasonOf(a.outcome), 'bad-answer');
      assert.deepEqual(restarts, ['bad-answer']);
    });

    test('a timed-out request on a process that keeps answering others: forgotten, its late answer ignored, the process kept', async () => {
      const { worker, launcher, job, restarts } = await started({ codec: taggedCodec, depth: 8 });
      const slow = job();
      worker.assign(slow);
      await tick(10);
      const quick = job();
      worker.assign(quick);
      launcher.last.say(`${quick.tag}:1\n`);
      await tick(TIMEOUT - 10);
      assert.equal(reasonOf(slow.outcome), 'timeout');
      assert.deepEqual(restarts, [], 'it answered something since: alive');
      assert.equal(worker.load, 0, 'the timed-out request no longer takes a place');
      launcher.last.say(`${slow.tag}:1\n`);
      assert.deepEqual(restarts, [], 'the late answer is dropped');
      assert.equal(slow.settleCount, 1);
      launcher.last.say(`${slow.tag}:1\n`);
      assert.deepEqual(restarts, [], 'a second late answer too');
      assert.equal(slow.settleCount, 1);
    });

    test('a process that answers nothing for a whole timeout is killed', async () => {
      const { worker, job, restarts } = await started({ codec: taggedCodec, depth: 8 });
      worker.assign(job());
      await tick(TIMEOUT);
      assert.deepEqual(restarts, ['timeout']);
    });
  });

  describe('pause and resume', () => {
    test('stops reading the script while paused, also for a process started while paused', async () => {
      const { worker, launcher } = await started();
      worker.pause();
      assert.equal(launcher.last.paused, true);
      launcher.last.exit({ code: 1, signal: null });
      await tick(0);
      await settle();
      assert.equal(launcher.processes.length, 2);
      assert.equal(launcher.last.paused, true, 'the new process is paused too');
      worker.resume();
      assert.equal(launcher.last.paused, false);
    });

    test('time spent paused is not held against the process', async () => {
      const { worker, launcher, job, restarts } = await started();
      const a = job();
      worker.assign(a);
      worker.pause();
      await tick(TIMEOUT);
      assert.equal(reasonOf(a.outcome), 'timeout', 'the requester still gets its answer in time');
      assert.deepEqual(restarts, [], 'but a script we were not reading is not killed');
      // Nor is it looked at again and again while paused.
      const timers = mock.method(globalThis, 'setTimeout');
      for (let i = 0; i < 50; i++) await tick(10);
      assert.ok(timers.mock.callCount() <= 1, `${timers.mock.callCount()} timers set while paused`);
      timers.mock.restore();
      worker.resume();
      await tick(TIMEOUT - 1);
      assert.deepEqual(restarts, []);
      launcher.last.say('1\n');
      assert.deepEqual(restarts, []);
      assert.equal(worker.load, 0);
    });
  });

  describe('close', () => {
    test('before start: nothing to close', async () => {
      const { worker, launcher } = setup();
      await worker.close();
      assert.equal(launcher.processes.length, 0);
      assert.equal(worker.accepting, false);
    });

    test('when ready: fails what it holds with stopping, then EOF; a script that exits on EOF gets no signal', async () => {
      const { worker, launcher, job } = await started();
      const a = job();
      worker.assign(a);
      await worker.close();
      assert.equal(reasonOf(a.outcome), 'stopping');
      assert.equal(launcher.last.inputClosed, true);
      assert.deepEqual(launcher.last.signals, []);
      assert.equal(worker.alive, false);
      assert.equal(worker.close(), worker.close(), 'closing twice is one close');
    });

    test('a script that ignores EOF gets SIGTERM after the grace period, then SIGKILL', async () => {
      const { worker, launcher } = await started();
      const proc = launcher.last;
      (proc as unknown as { behaviour: object }).behaviour = { exitOnEof: false, exitOnTerm: false };
      const closed = worker.close();
      await tick(GRACE);
      assert.deepEqual(proc.signals, ['SIGTERM']);
      await tick(GRACE);
      assert.deepEqual(proc.signals, ['SIGTERM', 'SIGKILL']);
      await closed;
      assert.equal(proc.detached, true);
    });

    test('while starting: the process is closed and ready never makes it accept', async () => {
      const { worker, launcher } = setup();
      launcher.behaviour = { manualReady: true };
      worker.start();
      const closed = worker.close();
      launcher.last.becomeReady();
      await closed;
      assert.equal(launcher.last.inputClosed, true);
      assert.equal(worker.accepting, false);
    });

    test('while waiting to restart: no process is started afterwards', async () => {
      const { worker, launcher } = await started();
      launcher.last.exit({ code: 1, signal: null });
      await worker.close();
      await tick(10_000);
      assert.equal(launcher.processes.length, 1);
    });

    test('killNow sends SIGKILL to the process group at once', async () => {
      const { worker, launcher } = await started();
      worker.killNow();
      assert.deepEqual(launcher.last.signals, ['SIGKILL']);
    });
  });

  describe('retire', () => {
    test('takes nothing new, lets the process answer what it holds, then closes it', async () => {
      const { worker, launcher, job, restarts } = await started({ depth: 4 });
      const a = job();
      worker.assign(a);
      let done = false;
      const retired = worker.retire().then(() => (done = true));
      assert.equal(worker.accepting, false);
      await settle();
      assert.equal(done, false);
      assert.equal(launcher.last.inputClosed, false);
      launcher.last.say('1\n');
      assert.equal(a.outcome, true);
      await retired;
      assert.equal(launcher.last.inputClosed, true);
      assert.deepEqual(restarts, []);
    });

    test('a retiring process that exits is not restarted', async () => {
      const { worker, launcher, job } = await started();
      const a = job();
      worker.assign(a);
      const retired = worker.retire();
      launcher.last.exit({ code: 1, signal: null });
      await retired;
      await tick(1000);
      assert.equal(launcher.processes.length, 1);
      assert.equal(reasonOf(a.outcome), 'crashed');
    });
  });
});
