// Builds the benchmark's auth script (bench/scripts/bench-script.c) into a temp dir with the
// system C compiler, and says how to run it.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR } from './child.js';

export type Protocol = 'generic' | 'ejabberd';
/** What the script can speak: the component's scenarios use the classic two, the tagged bench all three. */
export type ScriptProtocol = Protocol | 'tagged';

export interface ScriptCommand {
  file: string;
  args: string[];
  /** The same as one EXTERNAL_AUTH_COMMAND / extauth_program line. */
  line: string;
}

export class BenchScript {
  private constructor(
    private readonly dir: string,
    readonly binary: string,
  ) {}

  /** Compiles the script (needs `cc`: gcc or clang). */
  static build(): BenchScript {
    const dir = mkdtempSync(join(tmpdir(), 'extauth-bench-'));
    const binary = join(dir, 'bench-script');
    const compiler = process.env.CC ?? 'cc';
    try {
      execFileSync(compiler, ['-O2', '-o', binary, join(BENCH_DIR, 'scripts/bench-script.c')], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      const e = error as { stderr?: Buffer; message: string };
      throw new Error(`compiling bench/scripts/bench-script.c with ${compiler} failed (install gcc, or set CC): ${e.stderr?.toString() ?? e.message}`);
    }
    return new BenchScript(dir, binary);
  }

  /**
   * The script speaking `protocol`, answering after `delayMs` (0: at once); with `scramFile`, it
   * also answers SCRAM-SHA-256 credential requests from that file (see the C source).
   */
  command(protocol: ScriptProtocol, delayMs: number, scramFile?: string): ScriptCommand {
    const args = [protocol, String(delayMs), ...(scramFile ? [scramFile] : [])];
    return { file: this.binary, args, line: [this.binary, ...args].join(' ') };
  }

  /** A directory for files the script reads; removed with it. */
  get workDir(): string {
    return this.dir;
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
