// Progress on stderr while the benchmark runs: which scenario, which run, how many requests.
// On a terminal one line is rewritten in place; otherwise a line at most every few seconds.

const IS_TTY = process.stderr.isTTY === true;
const PIPE_INTERVAL_MS = 3000;

export class Progress {
  private scenario = '';
  private lastLine = 0;
  private lineOpen = false;
  private readonly started = performance.now();

  /** Starts a new scenario (always printed). */
  scenarioStart(name: string): void {
    this.endLine();
    this.scenario = name;
    this.print(`${name}`, true);
  }

  /** A status within the current scenario; printed when due (or always when `force`). */
  update(status: string, force = false): void {
    this.print(`${this.scenario}: ${status}`, force);
  }

  /** A line that stays on screen (a warning, a result). */
  note(text: string): void {
    this.print(text, true);
    if (IS_TTY) this.endLine();
  }

  /** Ends an in-place line so that what follows starts on its own. */
  endLine(): void {
    if (this.lineOpen) process.stderr.write('\n');
    this.lineOpen = false;
  }

  private print(text: string, force: boolean): void {
    const now = performance.now();
    if (!force && !IS_TTY && now - this.lastLine < PIPE_INTERVAL_MS) return;
    this.lastLine = now;
    const line = `[bench ${formatElapsed(now - this.started)}] ${text}`;
    if (IS_TTY) {
      const width = process.stderr.columns ?? 120;
      process.stderr.write(`\r\x1b[K${line.slice(0, width - 1)}`);
      this.lineOpen = true;
    } else {
      process.stderr.write(`${line}\n`);
    }
  }
}

function formatElapsed(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
}
