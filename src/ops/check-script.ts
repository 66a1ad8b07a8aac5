import { ReadStream } from 'node:tty';
import { isRequestKind, isScramHash, REQUEST_KINDS, type RequestKind, type ScramHash } from '../core/auth-request.js';
import { Failure } from '../core/failure.js';
import { ConfigError, ConfigErrors, scriptEnvironment, SETTINGS, unknownVariableWarnings, type ScriptProtocol } from '../config/config.js';
import type { Command } from '../config/parsers.js';
import { closeInheritedDescriptors } from '../worker/inherited-descriptors.js';
import { launchPipeProcess } from '../worker/pipe-process.js';
import { launchPtyProcess, loadNodePty } from '../worker/pty-process.js';
import { answerEnd, diagnose, encodeRequest } from './script-diagnosis.js';
import { probeScript } from './script-probe.js';

export const EXIT_CONFIG = 2;
export const CHECK_SCRIPT_USAGE =
  'usage: extauth-component check-script KIND USER [SERVER]   (KIND: auth, isuser, setpass, tryregister, removeuser, or scram for SCRAM-SHA-256 credentials (scram-sha-1, scram-sha-512 for the others); SERVER defaults to localhost; the password, for auth/setpass/tryregister, is the first line of stdin)';

/** `scram` and `scram-HASH` on the command line: the SASL mechanism's name, lower case. */
function scramHashOf(kind: string): ScramHash | null | undefined {
  if (kind === 'scram') return 'sha-256';
  if (!kind.startsWith('scram-')) return undefined;
  const hash = kind.slice('scram-'.length);
  return isScramHash(hash) ? hash : null;
}

/** The settings a script run depends on: exactly the daemon's, and nothing about XMPP. */
interface ScriptSettings {
  readonly command: Command;
  readonly protocol: ScriptProtocol;
  readonly timeoutMs: number;
  readonly pty: boolean;
  readonly env: Readonly<Record<string, string>>;
}

const SCRIPT_SETTINGS = ['command', 'protocol', 'timeoutMs', 'pty'] as const;

/** Parses the script settings with the daemon's own table, reporting every error at once. */
export function loadScriptSettings(env: Readonly<Record<string, string | undefined>>, cwd = process.cwd()): ScriptSettings {
  const parsed: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const key of SCRIPT_SETTINGS) {
    const spec = SETTINGS[key];
    const raw = env[spec.name];
    try {
      if (spec.fallback === null && (raw === undefined || raw.trim() === '')) throw new ConfigError(spec.name, 'is required but not set');
      parsed[key] = spec.parse(raw ?? spec.fallback ?? '', { env, cwd, parsed });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      errors.push(error);
    }
  }
  if (errors.length > 0) throw new ConfigErrors(errors);
  return { ...(parsed as Omit<ScriptSettings, 'env'>), env: scriptEnvironment(env) };
}

export interface CheckScriptIo {
  readonly stdin: NodeJS.ReadableStream;
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

const CONTROL = /[\u0000-\u001f\u007f]/;

/** `extauth-component check-script KIND USER [SERVER]`: one request, a verdict, an exit status. */
export async function checkScript(args: readonly string[], env: Readonly<Record<string, string | undefined>>, io: CheckScriptIo): Promise<number> {
  const configError = (message: string) => {
    for (const line of message.split('\n')) io.err(`extauth-component check-script: ${line}`);
    return EXIT_CONFIG;
  };
  const [named, user, server = 'localhost', ...extra] = args;
  if (named === undefined || user === undefined || extra.length > 0) return configError(CHECK_SCRIPT_USAGE);
  const hash = scramHashOf(named);
  const kind = hash === undefined ? named : 'scram';
  if (!isRequestKind(kind) || hash === null) return configError(`unknown KIND '${named}'; ${CHECK_SCRIPT_USAGE}`);
  for (const [name, value] of [
    ['USER', user],
    ['SERVER', server],
  ] as const) {
    if (value === '' || value.includes(':') || CONTROL.test(value))
      return configError(`${name} must be non-empty, without ':' or control characters (the component refuses such a request)`);
  }

  // A misspelt setting would otherwise leave its default in force without a word.
  for (const warning of unknownVariableWarnings(env)) io.err(`extauth-component check-script: warning: ${warning}`);
  let settings: ScriptSettings;
  try {
    settings = loadScriptSettings(env);
    if (kind === 'scram' && settings.protocol === 'ejabberd') {
      throw new ConfigErrors([
        new ConfigError(
          'EXTERNAL_AUTH_PROTOCOL',
          'is ejabberd, which cannot carry SCRAM credentials: the component answers scram queries feature-not-implemented without asking the script (generic or tagged can)',
        ),
      ]);
    }
    if (settings.pty) await loadNodePty().catch((error: Error) => Promise.reject(new ConfigErrors([new ConfigError('EXTERNAL_AUTH_PTY', error.message)])));
  } catch (error) {
    if (error instanceof ConfigErrors) return configError(error.message);
    throw error;
  }

  let password: string | undefined;
  if (REQUEST_KINDS[kind as RequestKind].carriesPassword) {
    password = await readPassword(io, `password for ${user}@${server}: `);
    if (CONTROL.test(password)) return configError('the password contains a control character (the component refuses such a request)');
  }
  const last = hash ?? password;
  const fields = `${kind}:${user}:${server}${last === undefined ? '' : `:${last}`}`;
  let request: Buffer;
  try {
    request = encodeRequest(settings.protocol, fields);
  } catch (error) {
    if (error instanceof Failure) return configError(error.detail);
    throw error;
  }

  // As the daemon does: nothing we inherited reaches the script.
  closeInheritedDescriptors();
  io.out(`running ${[settings.command.file, ...settings.command.args].join(' ')}`);
  const seen = await probeScript({
    launch: settings.pty ? launchPtyProcess : launchPipeProcess,
    command: { file: settings.command.file, args: settings.command.args, env: settings.env },
    request,
    timeoutMs: settings.timeoutMs,
    answerEnd: (output) => answerEnd(settings.protocol, output),
  });
  const verdict = diagnose(
    {
      protocol: settings.protocol,
      pty: settings.pty,
      timeoutMs: settings.timeoutMs,
      fields,
      ...(password === undefined ? {} : { password }),
      ...(hash === undefined ? {} : { scramHash: hash }),
    },
    seen,
  );
  for (const line of verdict.lines) io.out(line);
  return verdict.exitCode;
}

/** The first line of stdin; from a terminal, asked for without echo. */
async function readPassword(io: CheckScriptIo, prompt: string): Promise<string> {
  const stdin = io.stdin;
  const tty = stdin instanceof ReadStream && stdin.isTTY;
  if (tty) {
    process.stderr.write(prompt);
    stdin.setRawMode(true);
  }
  let text = '';
  try {
    for await (const chunk of stdin) {
      const data = typeof chunk === 'string' ? chunk : (chunk as Buffer).toString('utf8');
      if (tty) {
        for (const c of data) {
          if (c === '\r' || c === '\n') return text;
          if (c === '\u0003') {
            process.stderr.write('\n');
            process.exit(130);
          }
          if (c === '\u007f' || c === '\b') text = text.slice(0, -1);
          else text += c;
        }
        continue;
      }
      text += data;
      const newline = text.indexOf('\n');
      if (newline !== -1) return text.slice(0, newline);
    }
    return text;
  } finally {
    if (tty) {
      stdin.setRawMode(false);
      process.stderr.write('\n');
      stdin.pause();
    }
  }
}
