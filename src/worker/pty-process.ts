import { accessSync, constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { ScriptCommand, ScriptExit, ScriptLauncher, ScriptProcess, ScriptProcessHandlers } from './script-process.js';

/**
 * Runs the script under a pseudo-terminal, for scripts that block-buffer their stdout when it
 * is not a terminal. The terminal is switched to raw mode before the first request is written:
 * no echo, no CR/LF translation, no signal, flow-control or editing characters, so both
 * protocols pass byte for byte. stdout and stderr are one stream on a pty.
 *
 * node-pty is an optional dependency (it builds from source); `loadNodePty()` must succeed
 * before `launchPtyProcess` is used.
 */

/** How long the wrapper may take to switch the terminal to raw mode. */
const READY_TIMEOUT_MS = 5000;
/** What the wrapper prints once the terminal is raw; it never reaches the worker. */
const READY_MARKER = Buffer.from('<extauth-pty-raw-ready>');
/** Wrapper output kept for the error message when it fails before the marker. */
const MAX_PREAMBLE_BYTES = 2048;

/**
 * The fixed wrapper run under the pty. The script and its arguments are its positional
 * parameters and are never part of the shell text. It closes every descriptor above 2 (node-pty
 * opens its masters without close-on-exec, so each script would otherwise hold its siblings'
 * terminals), switches the terminal to raw mode, prints the marker and execs the script.
 * A shell that cannot name descriptors above 9 (dash) closes only those up to 9. It runs with
 * -p, so that bash neither sources $BASH_ENV nor imports functions (say, one named stty) from
 * the environment.
 */
const WRAPPER_SCRIPT = [
  '__xa_w=; (eval "exec 10>&-") 2>/dev/null && __xa_w=1',
  'for __xa_f in /proc/self/fd/*; do',
  '  __xa_n=${__xa_f##*/}',
  '  case $__xa_n in ""|*[!0-9]*|0|1|2) continue ;; esac',
  '  if [ -n "$__xa_w" ] || [ "$__xa_n" -le 9 ]; then eval "exec $__xa_n>&-"; fi',
  'done',
  'unset __xa_w __xa_f __xa_n',
  'stty raw -echo -echonl -icanon -isig -iexten -icrnl -inlcr -igncr -istrip -ixon -ixoff -opost -onlcr cs8 -parenb min 1 time 0 || exit 125',
  `printf '%s' '${READY_MARKER.toString('latin1')}'`,
  'exec "$@"',
].join('\n');

/** The parts of node-pty 1.1.0 used here; declared locally so that the build never needs it. */
interface PtyTerminal {
  readonly pid: number;
  onData(listener: (data: Buffer | string) => void): { dispose(): void };
  onExit(listener: (event: { exitCode: number; signal?: number }) => void): { dispose(): void };
  write(data: Buffer): void;
  /** Stops and restarts reading from the terminal's master. */
  pause(): void;
  resume(): void;
  kill(signal?: string): void;
  /** UnixTerminal: closes the master (then sends SIGHUP through `kill`). Not in node-pty's typings. */
  destroy(): void;
  /** The underlying tty stream's events; an 'error' listener stops node-pty rethrowing read errors. */
  on(event: 'error', listener: (error: Error) => void): void;
}

interface PtyModule {
  spawn(
    file: string,
    args: string[],
    options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string>; encoding: null; handleFlowControl: boolean },
  ): PtyTerminal;
}

let nodePty: PtyModule | null = null;
let wrapperShell = '/bin/sh';

/**
 * Loads node-pty and picks the wrapper shell. Rejects with a one-line reason when pty mode
 * cannot work here, so that startup can fail before connecting.
 */
export async function loadNodePty(): Promise<void> {
  if (nodePty) return;
  if (process.platform === 'win32') throw new Error('pty mode needs a POSIX system, not Windows');
  // A computed specifier: node-pty is optional and the build must not need it.
  const specifier = 'node-pty';
  let loaded: unknown;
  try {
    loaded = await import(specifier);
  } catch (error) {
    const reason = firstLine((error as Error).message ?? String(error));
    throw new Error(
      `the optional package node-pty cannot be loaded (${reason}); install it where a C++ toolchain and python3 are available (npm install node-pty), or set EXTERNAL_AUTH_PTY=false`,
    );
  }
  const module = ((loaded as { default?: unknown }).default ?? loaded) as Partial<PtyModule>;
  if (typeof module.spawn !== 'function') throw new Error('the installed node-pty has no spawn() function; install node-pty 1.1.0');
  wrapperShell = ['/bin/bash', '/usr/bin/bash', '/bin/sh'].find(isExecutable) ?? '/bin/sh';
  nodePty = module as PtyModule;
}

export const launchPtyProcess: ScriptLauncher = (command: ScriptCommand, handlers: ScriptProcessHandlers): ScriptProcess => {
  if (!nodePty) throw new Error('pty mode: node-pty is not loaded (call loadNodePty() first)');
  let live = true;
  let isReady = false;
  let hungUp = false;
  let exited = false;
  let destroyed = false;
  let failed = false;
  let preamble = Buffer.alloc(0);
  let readyTimer: NodeJS.Timeout | undefined;
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => {
    // The worker handles it; this only keeps an abandoned promise from being "unhandled".
  });

  let term: PtyTerminal;
  try {
    term = nodePty.spawn(wrapperShell, ['-p', '-c', WRAPPER_SCRIPT, 'extauth-pty', command.file, ...command.args], {
      name: 'dumb',
      cols: 80,
      rows: 24,
      cwd: process.cwd(),
      env: { ...command.env },
      encoding: null,
      handleFlowControl: false,
    });
  } catch (error) {
    // forkpty failed (no ptys left, out of processes): like a spawn error over pipes.
    setImmediate(() => {
      if (!live) return;
      live = false;
      handlers.exit({ code: null, signal: null, spawnError: firstLine((error as Error).message) });
    });
    return { pid: undefined, ready, write() {}, closeInput() {}, kill() {}, pause() {}, resume() {}, detach: () => void (live = false) };
  }
  const pid = term.pid;

  /** Signals the script's process group: node-pty's child is a session leader, so its group is its pid. */
  const signalGroup = (signal: NodeJS.Signals) => {
    if (exited) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };
  // destroy() sends its SIGHUP through kill(): make that reach the group, and nothing once the pid is reaped.
  term.kill = (signal?: string) => signalGroup((signal ?? 'SIGHUP') as NodeJS.Signals);
  term.on('error', () => {
    // node-pty closes the terminal itself; the exit is reported separately.
  });

  /** Closes the master: the terminal hangs up, so the script reads EOF and its session gets SIGHUP. */
  const closeMaster = () => {
    if (destroyed) return;
    destroyed = true;
    term.destroy();
  };

  /** The reason, with what the wrapper printed before failing (stty's complaint). */
  const withWrapperOutput = (reason: string) => {
    const said = preamble.toString('utf8').replace(/\s+/g, ' ').trim();
    return said === '' ? reason : `${reason}: ${said.slice(0, 300)}`;
  };
  const failReady = (reason: string) => {
    if (failed || isReady) return;
    failed = true;
    clearTimeout(readyTimer);
    rejectReady(new Error(withWrapperOutput(reason)));
  };

  const onData = term.onData((data) => {
    if (!live) return;
    const chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (isReady) {
      handlers.output(chunk);
      return;
    }
    if (failed) return;
    preamble = Buffer.concat([preamble, chunk]);
    const at = preamble.indexOf(READY_MARKER);
    if (at === -1) {
      if (preamble.length > MAX_PREAMBLE_BYTES) failReady('the pty wrapper printed no ready marker');
      return;
    }
    const rest = preamble.subarray(at + READY_MARKER.length);
    preamble = Buffer.alloc(0);
    isReady = true;
    clearTimeout(readyTimer);
    resolveReady();
    if (rest.length > 0) handlers.output(Buffer.from(rest));
  });

  const onExit = term.onExit(({ exitCode, signal }) => {
    exited = true;
    clearTimeout(readyTimer);
    if (!live) return;
    const exit: ScriptExit = signal ? { code: null, signal: signalName(signal) } : { code: exitCode, signal: null };
    if (!isReady && !hungUp) {
      // The wrapper failed (no stty, or it refused a setting): the script never ran, so this
      // is a script that cannot be started, with the wrapper's words as the reason.
      failed = true;
      live = false;
      handlers.exit({
        ...exit,
        spawnError: withWrapperOutput(`could not switch the pty to raw mode (wrapper exited with ${exit.signal ?? `code ${exit.code}`})`),
      });
      return;
    }
    live = false;
    handlers.exit(exit);
  });

  readyTimer = setTimeout(() => failReady(`the pty was not in raw mode within ${READY_TIMEOUT_MS / 1000} s`), READY_TIMEOUT_MS);

  return {
    pid,
    ready,
    write(bytes) {
      if (!isReady || hungUp || destroyed) return;
      term.write(bytes);
    },
    closeInput() {
      // In raw mode ^D is just a byte: end of input on a terminal is a hang-up.
      if (hungUp) return;
      hungUp = true;
      closeMaster();
      signalGroup('SIGHUP');
    },
    kill(signal) {
      signalGroup(signal);
    },
    pause() {
      if (!destroyed) term.pause();
    },
    resume() {
      if (!destroyed) term.resume();
    },
    detach() {
      live = false;
      clearTimeout(readyTimer);
      onData.dispose();
      onExit.dispose();
      closeMaster();
    },
  };
};

function signalName(signal: number): string {
  const entry = Object.entries(osConstants.signals).find(([, number]) => number === signal);
  return entry ? entry[0] : String(signal);
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}
