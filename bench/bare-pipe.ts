// The baseline: the same script driven directly over its pipes, with no component in between,
// in a process of its own. Same protocol, processes, per-process depth and window as the
// component scenario it is compared with; requests go to the process with room.
//
//   forked by bench/component-bench.ts
import { spawn, type ChildProcess } from 'node:child_process';
import { reply, serveParent, type ChildStatus } from './child.js';
import { LoadRun, type RunCounts, type RunLimits } from './load-run.js';
import { Outcome } from './reply-scanner.js';

export type BarePipeCommand =
  | { type: 'start'; file: string; args: string[]; protocol: 'generic' | 'ejabberd'; processes: number }
  | { type: 'run'; limits: RunLimits; depth: number; progressEveryMs: number; drainTimeoutMs: number };

export interface BarePipeResult extends RunCounts {
  /** This driver's own CPU, as a fraction of one core. */
  driverCpu: number;
}

export type BarePipeMessage =
  | { type: 'started' }
  | { type: 'progress'; sent: number; completed: number }
  | { type: 'result'; result: BarePipeResult }
  | ChildStatus;

const tell: (message: BarePipeMessage) => void = reply;

const USERS = 64;
let requests: string[] = [];
let pipes: ScriptPipe[] = [];
let current: { run: LoadRun; perProcess: number } | null = null;
let latencyBuffer = new Float64Array(0);

/** One script process: what is outstanding on it, and when each batch was written. */
class ScriptPipe {
  outstanding = 0;
  private readonly batchCounts: number[] = [];
  private readonly batchTimes: number[] = [];
  private head = 0;
  /** ejabberd: bytes of the current 4-byte answer seen so far; generic: whether the line held '1'. */
  private framePos = 0;
  private sawOne = false;

  constructor(
    readonly child: ChildProcess,
    private readonly ejabberd: boolean,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => this.onOutput(chunk));
    child.on('exit', (code, signal) => {
      if (current) tell({ type: 'failed', message: `script exited (${signal ?? code}) during a run` });
    });
  }

  write(count: number, now: number): void {
    let out = '';
    for (let i = 0; i < count; i++) out += requests[(this.outstanding + i + this.head) % USERS]!;
    this.child.stdin!.write(out, 'latin1');
    this.outstanding += count;
    this.batchCounts.push(count);
    this.batchTimes.push(now);
  }

  private onOutput(chunk: Buffer): void {
    const now = performance.now();
    const run = current?.run;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      let outcome: Outcome | -1 = -1;
      if (this.ejabberd) {
        if (++this.framePos === 4) {
          this.framePos = 0;
          outcome = byte === 1 ? Outcome.Accepted : Outcome.Refused;
        }
      } else if (byte === 0x0a) {
        outcome = this.sawOne ? Outcome.Accepted : Outcome.Refused;
        this.sawOne = false;
      } else if (byte === 0x31) this.sawOne = true;
      if (outcome === -1) continue;
      const sentAt = this.batchTimes[this.head]!;
      if (--this.batchCounts[this.head]! === 0) this.head++;
      this.outstanding--;
      run?.noteAnswer(now, sentAt, outcome);
    }
    if (this.head > 1024) {
      this.batchCounts.splice(0, this.head);
      this.batchTimes.splice(0, this.head);
      this.head = 0;
    }
    if (current) {
      refill(now);
      current.run.poke();
    }
  }
}

function refill(now: number): void {
  if (!current) return;
  const { run, perProcess } = current;
  for (const pipe of pipes) {
    const count = Math.min(run.room(now), perProcess - pipe.outstanding);
    if (count <= 0) continue;
    pipe.write(count, now);
    run.noteSent(count);
  }
}

function start(command: Extract<BarePipeCommand, { type: 'start' }>): void {
  const ejabberd = command.protocol === 'ejabberd';
  requests = Array.from({ length: USERS }, (_, k) => {
    const line = `auth:u${k}:example.com:pw-u${k}`;
    return ejabberd ? String.fromCharCode(line.length >> 8, line.length & 0xff) + line : `${line}\n`;
  });
  pipes = Array.from({ length: command.processes }, () => {
    const child = spawn(command.file, command.args, { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin!.on('error', () => {});
    return new ScriptPipe(child, ejabberd);
  });
  process.on('exit', () => {
    for (const pipe of pipes) pipe.child.kill('SIGKILL');
  });
}

async function measure(command: Extract<BarePipeCommand, { type: 'run' }>): Promise<BarePipeResult> {
  if (pipes.length === 0) throw new Error('no scripts started');
  const { limits } = command;
  if (latencyBuffer.length < limits.maxRequests) latencyBuffer = new Float64Array(limits.maxRequests);
  const run = new LoadRun(limits, latencyBuffer);
  const perProcess = Math.min(command.depth, Math.ceil(limits.window / pipes.length));
  current = { run, perProcess };
  const ownCpuBefore = process.cpuUsage();
  const startedAt = performance.now();
  const progress = setInterval(() => tell({ type: 'progress', sent: run.sent, completed: run.completed }), command.progressEveryMs);
  try {
    refill(performance.now());
    await run.finished(command.drainTimeoutMs);
  } finally {
    clearInterval(progress);
    current = null;
  }
  const ownCpu = process.cpuUsage(ownCpuBefore);
  return { ...run.counts(), driverCpu: (ownCpu.user + ownCpu.system) / 1000 / (performance.now() - startedAt) };
}

serveParent<BarePipeCommand>(async (command) => {
  if (command.type === 'start') {
    start(command);
    tell({ type: 'started' });
  } else if (command.type === 'run') {
    tell({ type: 'result', result: await measure(command) });
  }
});
