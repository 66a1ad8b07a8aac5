import type { ScriptCommand, ScriptExit, ScriptLauncher } from '../worker/script-process.js';

/** How long a fresh process is watched for output before it is sent anything (a banner). */
export const BANNER_GRACE_MS = 300;
/** How long output is still collected after the first answer (a second answer). */
export const EXTRA_ANSWER_GRACE_MS = 500;
/** After EOF, then after SIGTERM: how long the script gets to exit. */
const CLOSE_GRACE_MS = 2000;

/** Everything one request to a fresh script process showed. */
export interface ScriptObservation {
  /** The process could not be prepared (a pty that could not be switched to raw mode). */
  readonly notReady?: string;
  /** Output before the request was written. */
  readonly beforeRequest: Buffer;
  /** Output after the request was written. */
  readonly afterRequest: Buffer;
  /** Milliseconds from the request to the end of the first answer, when one was complete. */
  readonly answerMs?: number;
  /** The first answer came only after the input was closed (a script that does not flush). */
  readonly answerAfterEof: boolean;
  /** stderr (empty under a pty, where it is part of the output). */
  readonly stderr: Buffer;
  /** How the process ended, and whether that was before we closed its input. */
  readonly exit?: ScriptExit & { readonly beforeEof: boolean; readonly afterMs: number };
  readonly timedOut: boolean;
  /** False when the script exited (or was not ready) before the request could be written. */
  readonly requestSent: boolean;
}

export interface ProbeOptions {
  readonly launch: ScriptLauncher;
  readonly command: ScriptCommand;
  readonly request: Buffer;
  readonly timeoutMs: number;
  /** Where the first answer ends in the output after the request, once it is complete; `null`: not yet. */
  readonly answerEnd: (output: Buffer) => number | null;
}

/**
 * Starts the script the way a worker does, watches it for a banner, writes one request, waits
 * for an answer (or an exit, or the timeout), keeps watching a little for a second answer, then
 * closes it: EOF, SIGTERM, SIGKILL.
 */
export async function probeScript(options: ProbeOptions): Promise<ScriptObservation> {
  const before: Buffer[] = [];
  const after: Buffer[] = [];
  const stderr: Buffer[] = [];
  let requestAt: number | null = null;
  let eofSent = false;
  let answerMs: number | undefined;
  let answerAfterEof = false;
  let exit: ScriptObservation['exit'];
  let wake: (() => void) | null = null;
  const poke = () => wake?.();

  const proc = options.launch(options.command, {
    output(chunk) {
      if (requestAt === null) before.push(chunk);
      else {
        after.push(chunk);
        if (answerMs === undefined && options.answerEnd(Buffer.concat(after)) !== null) {
          answerMs = performance.now() - requestAt;
          answerAfterEof = eofSent;
        }
      }
      poke();
    },
    diagnostic(chunk) {
      stderr.push(chunk);
    },
    exit(info) {
      exit = { ...info, beforeEof: !eofSent, afterMs: requestAt === null ? 0 : performance.now() - requestAt };
      poke();
    },
  });
  /** Resolves when `done()` holds or `ms` have passed, whichever is first. */
  const waitUntil = (done: () => boolean, ms: number) =>
    new Promise<void>((resolve) => {
      if (done()) return resolve();
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = () => done() && finish();
    });

  const observation = (timedOut: boolean, notReady?: string): ScriptObservation => ({
    ...(notReady === undefined ? {} : { notReady }),
    beforeRequest: Buffer.concat(before),
    afterRequest: Buffer.concat(after),
    ...(answerMs === undefined ? {} : { answerMs }),
    answerAfterEof,
    stderr: Buffer.concat(stderr),
    ...(exit === undefined ? {} : { exit }),
    timedOut,
    requestSent: requestAt !== null,
  });

  try {
    try {
      await proc.ready;
    } catch (error) {
      return observation(false, (error as Error).message);
    }
    await waitUntil(() => before.length > 0 || exit !== undefined, BANNER_GRACE_MS);
    if (exit === undefined) {
      requestAt = performance.now();
      proc.write(options.request);
      await waitUntil(() => answerMs !== undefined || exit !== undefined, options.timeoutMs);
    }
    const timedOut = answerMs === undefined && exit === undefined;
    if (!timedOut && exit === undefined) await waitUntil(() => exit !== undefined, EXTRA_ANSWER_GRACE_MS);
    if (exit === undefined) {
      eofSent = true;
      proc.closeInput();
      await waitUntil(() => exit !== undefined, CLOSE_GRACE_MS);
    }
    return observation(timedOut);
  } finally {
    if (exit === undefined) {
      proc.kill('SIGTERM');
      await waitUntil(() => exit !== undefined, CLOSE_GRACE_MS);
    }
    // Whatever the script started goes with it.
    proc.kill('SIGKILL');
    proc.detach();
  }
}
