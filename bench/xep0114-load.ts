// The load generator for the component, in a process of its own: the server side of XEP-0114.
// It accepts the component's stream and handshake, then keeps a window of pre-shaped auth IQs
// outstanding and reads the replies with a string scan (reply-scanner.ts), so that the
// generator is never the bottleneck. It also reads the component's CPU time and memory from
// /proc around each run.
//
//   forked by bench/component-load.ts with: SECRET DOMAIN
import { createHash, randomUUID } from 'node:crypto';
import net from 'node:net';
import { NS_EXTAUTH } from '../src/xmpp/namespaces.js';
import { reply, serveParent, type ChildStatus } from './child.js';
import { LoadRun, type RunCounts, type RunLimits } from './load-run.js';
import { cpuMark, cpuShare, memoryStatus, resetPeakRss } from './proc-stats.js';
import { type HostileStanza, hostileStanza } from './hostile-input.js';
import { scanReplies, type Outcome } from './reply-scanner.js';

export interface GeneratorRun {
  type: 'run';
  limits: RunLimits;
  componentPid: number;
  progressEveryMs: number;
  /** Sample the component's RSS this often; 0: never. */
  rssEveryMs: number;
  /** How long to wait for the last answers after sending stopped. */
  drainTimeoutMs: number;
  /** Sends one hostile stanza (hostileStanza) first, in the same write as the run's first requests. */
  hostile?: HostileStanza;
}

export interface GeneratorResult extends RunCounts {
  /** The component's CPU time over the run, as a fraction of one core. */
  componentCpu: number;
  /** The component's CPU time per answered request, in microseconds. */
  componentCpuUsPerRequest: number;
  /** This generator's own CPU, as a fraction of one core (a check that it is not the bottleneck). */
  generatorCpu: number;
  /** The component's peak RSS during the run, in bytes (NaN if the kernel would not reset it). */
  componentPeakRss: number;
  /** The component's RSS at the start, every rssEveryMs, and at the end, in bytes. */
  rssSamples: number[];
}

export type GeneratorMessage =
  | { type: 'listening'; port: number }
  | { type: 'online' }
  | { type: 'progress'; sent: number; completed: number }
  | { type: 'result'; result: GeneratorResult }
  | ChildStatus;

const tell: (message: GeneratorMessage) => void = reply;

const [secret = '', domain = ''] = process.argv.slice(2);
const REQUESTER = 'example.com';
const USERS = 64;
/** `' from=… to=…><auth …>password</auth></iq>` for each user, after the id. */
const REQUEST_TAILS = Array.from(
  { length: USERS },
  (_, k) => `' from='${REQUESTER}' to='${domain}'><auth xmlns='${NS_EXTAUTH}' user='u${k}'>pw-u${k}</auth></iq>`,
);
const REQUEST_HEAD = "<iq type='get' id='";

let link: net.Socket | null = null;
let pending = '';
let nextId = 0;
let current: ActiveRun | null = null;
let latencyBuffer = new Float64Array(0);
let sentAtBuffer = new Float64Array(0);

interface ActiveRun {
  run: LoadRun;
  /** The id of the run's first request; request id - base indexes sentAt. */
  base: number;
}

const server = net.createServer((socket) => acceptComponent(socket));
server.listen(0, '127.0.0.1', () => tell({ type: 'listening', port: (server.address() as net.AddressInfo).port }));

function acceptComponent(socket: net.Socket): void {
  if (link) {
    socket.destroy(); // one component at a time
    return;
  }
  socket.setNoDelay(true);
  socket.setEncoding('latin1'); // the scan only looks for ASCII
  const streamId = randomUUID();
  let buffered = '';
  let state: 'header' | 'handshake' | 'online' = 'header';
  socket.on('data', (chunk: string) => {
    if (state === 'online') return onReplies(chunk);
    buffered += chunk;
    if (state === 'header') {
      const header = /<stream:stream\b[^>]*>/.exec(buffered);
      if (!header) return;
      buffered = buffered.slice(header.index + header[0].length);
      state = 'handshake';
      socket.write(
        `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='${streamId}' from='${domain}'>`,
      );
    }
    const handshake = /<handshake>([0-9a-f]*)<\/handshake>/.exec(buffered);
    if (!handshake) return;
    const expected = createHash('sha1')
      .update(streamId + secret, 'utf8')
      .digest('hex');
    if (handshake[1] !== expected) {
      socket.end("<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>");
      return;
    }
    state = 'online';
    link = socket;
    socket.write('<handshake/>');
    const rest = buffered.slice(handshake.index + handshake[0].length);
    buffered = '';
    tell({ type: 'online' });
    if (rest) onReplies(rest);
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    if (link === socket) {
      link = null;
      current?.run.stop();
      current?.run.poke();
    }
  });
}

function onReplies(chunk: string): void {
  pending = pending ? pending + chunk : chunk;
  const active = current;
  const now = performance.now();
  const consumed = scanReplies(pending, 0, (id: number, outcome: Outcome) => {
    if (!active) return;
    const index = id - active.base;
    if (!(index >= 0 && index < active.run.sent)) return; // not this run's (cannot happen: runs drain)
    active.run.noteAnswer(now, sentAtBuffer[index]!, outcome);
  });
  pending = consumed >= pending.length ? '' : pending.slice(consumed);
  if (active) {
    pump(active, now);
    active.run.poke();
  }
}

/** Sends as many requests as the window allows, in one write (after `prelude`, if any). */
function pump(active: ActiveRun, now: number, prelude = ''): void {
  const room = active.run.room(now);
  if (room <= 0 || !link) return;
  let out = prelude;
  const first = active.run.sent;
  for (let i = 0; i < room; i++) {
    const id = nextId++;
    out += REQUEST_HEAD + id + REQUEST_TAILS[id % USERS]!;
    sentAtBuffer[first + i] = now;
  }
  active.run.noteSent(room);
  link.write(out);
}

async function measure(command: GeneratorRun): Promise<GeneratorResult> {
  if (!link) throw new Error('no component connected');
  if (current) throw new Error('a run is already going');
  const { limits } = command;
  if (latencyBuffer.length < limits.maxRequests) {
    latencyBuffer = new Float64Array(limits.maxRequests);
    sentAtBuffer = new Float64Array(limits.maxRequests);
  }
  const pid = command.componentPid;
  const peakResettable = resetPeakRss(pid);
  const rssSamples: number[] = [];
  const cpuBefore = cpuMark(pid);
  const ownCpuBefore = process.cpuUsage();
  const run = new LoadRun(limits, latencyBuffer);
  const active: ActiveRun = { run, base: nextId };
  current = active;
  const timers = [setInterval(() => tell({ type: 'progress', sent: run.sent, completed: run.completed }), command.progressEveryMs)];
  if (command.rssEveryMs > 0) {
    rssSamples.push(memoryStatus(pid).rss);
    timers.push(setInterval(() => rssSamples.push(memoryStatus(pid).rss), command.rssEveryMs));
  }
  try {
    pump(active, performance.now(), command.hostile ? hostileStanza(command.hostile, domain) : '');
    await run.finished(command.drainTimeoutMs, () => link !== null);
  } finally {
    for (const timer of timers) clearInterval(timer);
    current = null;
  }
  if (command.rssEveryMs > 0) rssSamples.push(memoryStatus(pid).rss);
  const cpuAfter = cpuMark(pid);
  const ownCpu = process.cpuUsage(ownCpuBefore);
  const counts = run.counts();
  return {
    ...counts,
    componentCpu: cpuShare(cpuBefore, cpuAfter),
    componentCpuUsPerRequest: counts.completed > 0 ? ((cpuAfter.cpuMs - cpuBefore.cpuMs) * 1000) / counts.completed : Number.NaN,
    generatorCpu: (ownCpu.user + ownCpu.system) / 1000 / (cpuAfter.at - cpuBefore.at),
    componentPeakRss: peakResettable ? memoryStatus(pid).peakRss : Number.NaN,
    rssSamples,
  };
}

serveParent<GeneratorRun>(async (command) => {
  if (command.type === 'run') tell({ type: 'result', result: await measure(command) });
});
