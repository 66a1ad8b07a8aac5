import { FramingError } from './codec.js';

const NEWLINE = 0x0a;

/**
 * Splits a script's output into lines, across reads, for the line protocols (generic, tagged).
 * A line longer than `maxLineBytes` is reported as too long rather than kept; output that runs
 * past it without a newline cannot be split into answers at all (a FramingError).
 */
export class LineReader {
  private buffered: Buffer | null = null;

  constructor(private readonly maxLineBytes: number) {}

  /** Bytes received that are not yet a whole line. */
  get pending(): number {
    return this.buffered?.length ?? 0;
  }

  /** Calls `onLine` for each complete line (without its newline) in order. Throws FramingError. */
  push(chunk: Buffer, onLine: (line: Buffer, tooLong: boolean) => void): void {
    let data = this.buffered === null ? chunk : Buffer.concat([this.buffered, chunk]);
    this.buffered = null;
    let start = 0;
    for (let nl = data.indexOf(NEWLINE, start); nl !== -1; nl = data.indexOf(NEWLINE, start)) {
      const line = data.subarray(start, nl);
      start = nl + 1;
      onLine(line, line.length > this.maxLineBytes);
    }
    if (start < data.length) {
      data = data.subarray(start);
      if (data.length > this.maxLineBytes) throw new FramingError(`script wrote more than ${this.maxLineBytes} bytes without a newline`);
      // Copy so a large chunk is not kept alive by a few trailing bytes.
      this.buffered = Buffer.from(data);
    }
  }
}

/** Where an answer line ends once the trailing CR and spaces both line protocols tolerate are left off. */
export function answerLineEnd(line: Buffer): number {
  let end = line.length;
  while (end > 0 && (line[end - 1] === 0x0d || line[end - 1] === 0x20)) end--;
  return end;
}
