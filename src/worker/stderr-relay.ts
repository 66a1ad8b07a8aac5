export interface StderrRelayOptions {
  readonly maxLineChars: number;
  readonly burst: number;
  readonly linesPerSecond: number;
  readonly redact: (line: string) => string;
  readonly emit: (line: string) => void;
  readonly suppressed: (count: number) => void;
  readonly now?: () => number;
}

/**
 * What one script process may put in the log: lines cut at 500 characters, a burst of 20 lines,
 * then 5 lines a second. Enough to read why a script fails; not enough to flood the log.
 */
export const STDERR_LIMITS = Object.freeze({ maxLineChars: 500, burst: 20, linesPerSecond: 5 });

/** A line longer than this is dropped whole rather than kept in memory until its newline. */
const MAX_PARTIAL_CHARS = 8192;

/**
 * Turns a script's stderr into log lines a person can use without letting a chatty or hostile
 * script flood the log or leak what it was sent: lines are cut to a maximum length, limited
 * to a burst and then a steady rate, and passed through `redact` before they are logged.
 */
export class StderrRelay {
  private partial = '';
  /** Inside a line too long to keep: drop it up to its newline, since any piece could hold half a secret. */
  private skipping = false;
  private tokens: number;
  private refilledAt: number;
  private dropped = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private readonly decoder = new TextDecoder('utf-8', { fatal: false });

  constructor(private readonly options: StderrRelayOptions) {
    this.tokens = options.burst;
    this.refilledAt = this.now();
  }

  push(chunk: Buffer): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    if (this.skipping && lines.length > 0) {
      lines.shift();
      this.skipping = false;
    }
    if (this.skipping) {
      this.partial = '';
      return;
    }
    for (const line of lines) this.relay(line);
    if (this.partial.length > MAX_PARTIAL_CHARS) {
      this.partial = '';
      this.skipping = true;
      this.relay(`[a line of more than ${MAX_PARTIAL_CHARS} characters was dropped]`);
    }
  }

  /** Logs what is left when the stream ends, and how much was held back. */
  flush(): void {
    if (this.partial !== '' && !this.skipping) this.relay(this.partial);
    this.partial = '';
    this.skipping = false;
    this.reportDropped();
  }

  private reportDropped(): void {
    clearTimeout(this.reportTimer);
    if (this.dropped > 0) {
      this.options.suppressed(this.dropped);
      this.dropped = 0;
    }
  }

  private relay(rawLine: string): void {
    const line = rawLine.replace(/\r$/, '');
    if (line === '') return;
    if (!this.take()) {
      // Say how much was held back even if the script goes quiet afterwards.
      if (this.dropped++ === 0) this.reportTimer = setTimeout(() => this.reportDropped(), 1000).unref();
      return;
    }
    this.reportDropped();
    // Redact before cutting, so a secret is never half-shown at the cut.
    const clean = this.options.redact(line);
    const { maxLineChars } = this.options;
    this.options.emit(clean.length > maxLineChars ? `${clean.slice(0, maxLineChars)}… (${clean.length} chars)` : clean);
  }

  private take(): boolean {
    const now = this.now();
    const { burst, linesPerSecond } = this.options;
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilledAt) / 1000) * linesPerSecond);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private now(): number {
    return (this.options.now ?? performance.now.bind(performance))();
  }
}
