// The component (`node dist/main.js`, started by support/component-process.ts) connected to the
// load generator (bench/xep0114-load.ts), each in its own process.
import { randomUUID } from 'node:crypto';
import { ComponentProcess } from '../support/component-process.js';
import type { ScriptCommand } from './bench-script.js';
import { BenchChild } from './child.js';
import type { RunLimits } from './load-run.js';
import type { HostileStanza } from './hostile-input.js';
import type { GeneratorMessage, GeneratorResult, GeneratorRun } from './xep0114-load.js';

export const BENCH_DOMAIN = 'auth.example.com';
const START_TIMEOUT_MS = 20_000;

export interface ComponentLoadOptions {
  protocol: 'generic' | 'ejabberd';
  script: ScriptCommand;
  /** EXTERNAL_AUTH_* and anything else for the component's environment. */
  env: Record<string, string>;
  /** Another build's entry point (the parser baseline) instead of dist/main.js. */
  main?: string;
}

export interface MeasureOptions {
  limits: RunLimits;
  /** Sample the component's RSS this often (0: never). */
  rssEveryMs?: number;
  /** Called with (sent, completed) a few times a second. */
  onProgress?: (sent: number, completed: number) => void;
  /** Send a hostile stanza ahead of the run's first request. */
  hostile?: HostileStanza;
}

export class ComponentUnderLoad {
  private constructor(
    private readonly generator: BenchChild<GeneratorRun, GeneratorMessage>,
    readonly component: ComponentProcess,
  ) {}

  static async start(options: ComponentLoadOptions): Promise<ComponentUnderLoad> {
    const secret = randomUUID();
    const generator = BenchChild.start<GeneratorRun, GeneratorMessage>('xep0114-load.ts', [secret, BENCH_DOMAIN], 'load generator');
    try {
      const { port } = await generator.next('listening', START_TIMEOUT_MS);
      // The generator's side of the handshake also says the component is online: with
      // LOG_LEVEL=warn there is no "connected" log line to wait for.
      let online = false;
      const onlineMessage = generator.next('online', START_TIMEOUT_MS).then(() => void (online = true));
      onlineMessage.catch(() => {});
      const component = await ComponentProcess.start({
        service: `xmpp://127.0.0.1:${port}`,
        domain: BENCH_DOMAIN,
        secret,
        command: options.script.line,
        protocol: options.protocol,
        env: { LOG_LEVEL: 'warn', ...options.env },
        label: 'bench component',
        ...(options.main ? { main: options.main } : {}),
        probe: async () => online,
      });
      await onlineMessage;
      return new ComponentUnderLoad(generator, component);
    } catch (error) {
      await generator.stop();
      throw error;
    }
  }

  get pid(): number {
    return this.component.pid!;
  }

  /** One run: the generator keeps the window full until the limits, then waits for the answers. */
  async measure(options: MeasureOptions): Promise<GeneratorResult> {
    const drainTimeoutMs = 30_000;
    this.generator.send({
      type: 'run',
      limits: options.limits,
      componentPid: this.pid,
      progressEveryMs: 250,
      rssEveryMs: options.rssEveryMs ?? 0,
      drainTimeoutMs,
      ...(options.hostile ? { hostile: options.hostile } : {}),
    });
    const { result } = await this.generator.next('result', options.limits.durationMs + drainTimeoutMs + 10_000, (message) => {
      if (message.type === 'progress') options.onProgress?.(message.sent, message.completed);
    });
    if (!this.component.running) throw new Error(`the component exited during the run\n${this.component.stderr.slice(-2000)}`);
    return result;
  }

  /** Stops the component (SIGTERM: a clean exit) and the generator. */
  async stop(): Promise<void> {
    try {
      await this.component.stop();
    } finally {
      await this.generator.stop();
    }
  }
}
