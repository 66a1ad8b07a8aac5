import type { Writable } from 'node:stream';

/**
 * Writes a child's whole stdin and closes it. A child that exits before reading it (a refused
 * argument, a missing file) must fail the test's assertions on its status and output, not crash
 * the test runner with an EPIPE from a write nobody listens to.
 */
export function endStdin(stdin: Writable, data: string | Buffer): void {
  stdin.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  stdin.end(data);
}
