// Speaks the script protocols to a backend script directly, as the component does: spawns it with
// a clean environment, writes requests to its stdin and reads its answers from stdout as bytes.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export type Protocol = 'generic' | 'ejabberd' | 'tagged';
export type Kind = 'auth' | 'isuser' | 'setpass' | 'tryregister' | 'removeuser' | 'scram';
/** '1', '0', 'E' (tagged: the backend failed), or SCRAM credentials `1:ITERATIONS:SALT:STOREDKEY:SERVERKEY`. */
export type Answer = '1' | '0' | 'E' | `1:${string}`;

export interface Request {
  kind: Kind;
  user: string;
  server?: string;
  password?: string;
  /** scram: the hash the credentials are asked for (default sha-256). */
  hash?: string;
}

export function requestBytes(r: Request): Buffer {
  const fields = [r.kind, r.user, r.server ?? 'example.com'];
  if (r.kind === 'auth' || r.kind === 'setpass' || r.kind === 'tryregister') fields.push(r.password ?? '');
  if (r.kind === 'scram') fields.push(r.hash ?? 'sha-256');
  return Buffer.from(fields.join(':'), 'utf8');
}

/** The fields of a SCRAM answer, decoded; undefined for `0` (or anything that is not `1:...`). */
export function scramFields(answer: Answer): { iterations: number; salt: Buffer; storedKey: Buffer; serverKey: Buffer } | undefined {
  const match = /^1:(\d+):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(answer);
  if (!match) return undefined;
  const [iterations, salt, storedKey, serverKey] = match.slice(1) as [string, string, string, string];
  return {
    iterations: Number(iterations),
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

const ANSWER = /^(?:1|0|1:\d+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+)$/;

export class ScriptClient {
  private stdoutBuffer = Buffer.alloc(0);
  private stderrText = '';
  private readonly inOrder: Array<{ resolve: (a: Answer) => void; reject: (e: Error) => void }> = [];
  private readonly tagged = new Map<string, { resolve: (a: Answer) => void; reject: (e: Error) => void }>();
  private nextTag = 0;
  /** Answers in the order they arrived (tagged: the tags). */
  readonly arrivals: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly child: ChildProcessWithoutNullStreams;

  constructor(
    command: string,
    readonly protocol: Protocol,
    env: Record<string, string>,
  ) {
    this.child = spawn(command, [], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', EXTERNAL_AUTH_PROTOCOL: protocol, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stderr.setEncoding('utf8').on('data', (t: string) => (this.stderrText += t));
    this.child.stdin.on('error', () => {});
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        const error = new Error(`script exited (code ${code}, signal ${signal}) before answering; stderr:\n${this.stderrText}`);
        for (const waiter of this.inOrder.splice(0)) waiter.reject(error);
        for (const waiter of this.tagged.values()) waiter.reject(error);
        this.tagged.clear();
        resolve({ code, signal });
      }),
    );
  }

  get stderr(): string {
    return this.stderrText;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private onData(chunk: Buffer): void {
    this.stdoutBuffer = Buffer.concat([this.stdoutBuffer, chunk]);
    if (this.protocol === 'ejabberd') {
      while (this.stdoutBuffer.length >= 4) {
        const frame = this.stdoutBuffer.subarray(0, 4);
        this.stdoutBuffer = this.stdoutBuffer.subarray(4);
        const answer = frame.equals(Buffer.from([0, 2, 0, 1])) ? '1' : frame.equals(Buffer.from([0, 2, 0, 0])) ? '0' : undefined;
        this.settleInOrder(answer, frame.toString('hex'));
      }
      return;
    }
    let newline: number;
    while ((newline = this.stdoutBuffer.indexOf(0x0a)) >= 0) {
      const line = this.stdoutBuffer.subarray(0, newline).toString('utf8');
      this.stdoutBuffer = this.stdoutBuffer.subarray(newline + 1);
      if (this.protocol === 'generic') {
        this.settleInOrder(ANSWER.test(line) ? (line as Answer) : undefined, line);
        continue;
      }
      const match = /^([0-9a-z]{1,16}):(E|1:.*|[10])$/.exec(line);
      const waiter = match ? this.tagged.get(match[1]!) : undefined;
      if (!match || !waiter) throw new Error(`unexpected answer line ${JSON.stringify(line)}`);
      this.tagged.delete(match[1]!);
      this.arrivals.push(match[1]!);
      if (match[2] !== 'E' && !ANSWER.test(match[2]!)) throw new Error(`unexpected answer line ${JSON.stringify(line)}`);
      waiter.resolve(match[2] as Answer);
    }
  }

  private settleInOrder(answer: Answer | undefined, raw: string): void {
    const waiter = this.inOrder.shift();
    if (!waiter) throw new Error(`answer ${raw} with no request outstanding`);
    this.arrivals.push(raw);
    if (answer) waiter.resolve(answer);
    else waiter.reject(new Error(`bad answer ${JSON.stringify(raw)}`));
  }

  /** Sends one request; resolves with its answer. `tag` picks the tagged ID (default: a counter). */
  ask(r: Request, tag?: string): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (!this.running) return reject(new Error('script is not running'));
      const body = requestBytes(r);
      if (this.protocol === 'tagged') {
        const id = tag ?? (this.nextTag++).toString(36);
        this.tagged.set(id, { resolve, reject });
        this.child.stdin.write(Buffer.concat([Buffer.from(`${id}:`), body, Buffer.from('\n')]));
      } else {
        this.inOrder.push({ resolve, reject });
        const frame =
          this.protocol === 'ejabberd' ? Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]) : Buffer.concat([body, Buffer.from('\n')]);
        this.writeSplit(frame);
      }
    });
  }

  /** Writes a frame in two parts, the cut inside it, so the script must join reads. */
  private writeSplit(frame: Buffer): void {
    const cut = Math.max(1, frame.length - 3);
    this.child.stdin.write(frame.subarray(0, cut));
    setImmediate(() => this.running && this.child.stdin.write(frame.subarray(cut)));
  }

  /** Closes stdin and waits for the script to exit. */
  async close(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.stdin.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }

  kill(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
