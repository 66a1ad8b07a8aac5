export interface ScriptExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** Set when the program could not be started at all (ENOENT, EACCES, ...). */
  readonly spawnError?: string;
}

export interface ScriptProcessHandlers {
  output(chunk: Buffer): void;
  /** The script's stderr; never called where stderr is merged into the output (pty). */
  diagnostic(chunk: Buffer): void;
  exit(exit: ScriptExit): void;
}

/** One running script, whatever carries its bytes (pipes or a pty). Only the worker holds one. */
export interface ScriptProcess {
  readonly pid: number | undefined;
  /** Resolves once requests may be written (a pty must first be switched to raw mode). */
  readonly ready: Promise<void>;
  write(bytes: Buffer): void;
  /** Sends EOF: a well-behaved script exits on it. */
  closeInput(): void;
  /** Signals the script's whole process group, so helpers it started go too. */
  kill(signal: NodeJS.Signals): void;
  /** Stops reading the script's output (it blocks once the pipe or terminal buffer is full). */
  pause(): void;
  /** Reads the script's output again after `pause()`. */
  resume(): void;
  /** Stops delivering events; the process is being abandoned. */
  detach(): void;
}

export interface ScriptCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export type ScriptLauncher = (command: ScriptCommand, handlers: ScriptProcessHandlers) => ScriptProcess;
