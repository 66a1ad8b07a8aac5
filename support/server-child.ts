import type { ChildProcess } from 'node:child_process';

/**
 * A server process a test started (an ejabberd node, say): its console output, kept bounded,
 * its exit, and a SIGKILL if the test process exits first, so no server outlives its test.
 */
export class ServerChild {
  private text = '';
  private code: number | null | undefined = undefined;
  private readonly killOnExit = () => this.child.kill('SIGKILL');
  readonly exited: Promise<void>;

  constructor(private readonly child: ChildProcess) {
    const collect = (chunk: Buffer) => {
      this.text += chunk.toString('utf8');
      if (this.text.length > 2_000_000) this.text = this.text.slice(-1_000_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      child.on('exit', (code) => {
        this.code = code;
        process.off('exit', this.killOnExit);
        resolve();
      }),
    );
    process.once('exit', this.killOnExit);
  }

  /** What it wrote on stdout and stderr (the last megabyte or two). */
  get output(): string {
    return this.text;
  }

  get running(): boolean {
    return this.code === undefined;
  }

  /** Its exit status once it has exited (null after a signal); undefined while it runs. */
  get exitCode(): number | null | undefined {
    return this.code;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}
