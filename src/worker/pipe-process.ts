import { spawn } from 'node:child_process';
import type { ScriptCommand, ScriptExit, ScriptLauncher, ScriptProcess, ScriptProcessHandlers } from './script-process.js';

/** How long after exit we still wait for the script's last output before reporting the exit. */
const OUTPUT_FLUSH_MS = 100;

/**
 * Runs the script with three pipes and nothing else: libuv opens every other descriptor
 * close-on-exec, so the script inherits none of our sockets. `detached` gives it a process
 * group of its own, which lets a kill reach whatever it spawned.
 */
export const launchPipeProcess: ScriptLauncher = (command: ScriptCommand, handlers: ScriptProcessHandlers): ScriptProcess => {
  let live = true;
  const child = spawn(command.file, [...command.args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...command.env },
    detached: true,
  });

  let exited: ScriptExit | null = null;
  let outputEnded = false;
  let flushTimer: NodeJS.Timeout | undefined;
  const reportExit = () => {
    if (!live || exited === null) return;
    live = false;
    clearTimeout(flushTimer);
    handlers.exit(exited);
  };

  child.stdout.on('data', (chunk: Buffer) => live && handlers.output(chunk));
  child.stderr.on('data', (chunk: Buffer) => live && handlers.diagnostic(chunk));
  child.stdout.on('end', () => {
    outputEnded = true;
    reportExit();
  });
  child.stdin.on('error', () => {
    // EPIPE when the script died: its exit is reported separately.
  });
  child.on('error', (error: NodeJS.ErrnoException) => {
    if (child.pid === undefined) {
      exited = { code: null, signal: null, spawnError: error.code ?? error.message };
      reportExit();
    }
  });
  child.on('exit', (code, signal) => {
    exited = { code, signal };
    if (outputEnded) reportExit();
    else flushTimer = setTimeout(reportExit, OUTPUT_FLUSH_MS);
  });

  // Requests arriving in the same tick leave in one write.
  let outbox: Buffer[] = [];
  const flush = () => {
    const batch = outbox;
    outbox = [];
    if (child.stdin.writable) child.stdin.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
  };

  return {
    get pid() {
      return child.pid;
    },
    ready: Promise.resolve(),
    write(bytes) {
      if (!child.stdin.writable) return;
      if (outbox.length === 0) process.nextTick(flush);
      outbox.push(bytes);
    },
    closeInput() {
      child.stdin.end();
    },
    pause() {
      child.stdout.pause();
    },
    resume() {
      child.stdout.resume();
    },
    kill(signal) {
      if (child.pid === undefined) return;
      // The group, even after the script itself exited: what it spawned may still be running.
      try {
        process.kill(-child.pid, signal);
      } catch {
        // ESRCH: nothing left in the group
      }
    },
    detach() {
      live = false;
      clearTimeout(flushTimer);
      child.stdout.destroy();
      child.stderr.destroy();
      child.stdin.destroy();
    },
  };
};
