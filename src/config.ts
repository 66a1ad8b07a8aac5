import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SCRIPT_PROTOCOLS, type ScriptProtocol } from './codec/index.js';
import { parseBareJid, type BareJid } from './xmpp/access-list.js';
import { ShellWordsError, splitShellWords } from './shell-words.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly service: { readonly uri: string; readonly host: string; readonly port: number };
  readonly domain: string;
  readonly secret: string;
  readonly command: { readonly file: string; readonly args: readonly string[] };
  readonly protocol: ScriptProtocol;
  readonly timeoutMs: number;
  readonly processes: number;
  readonly blocking: boolean;
  readonly allow: readonly BareJid[];
  readonly queueLimit: number;
  readonly pty: boolean;
  readonly logLevel: LogLevel;
  /** The environment scripts run with: ours, minus every secret. */
  readonly scriptEnv: Readonly<Record<string, string>>;
}

/** Every variable, its default as shown to people, and what it means: the single source for --help. */
export const VARIABLES = [
  ['XMPP_SERVICE', 'xmpp://localhost:5347', "where the server's component listener is (xmpp://HOST:PORT)"],
  ['XMPP_DOMAIN', '(required)', "the component's own JID, e.g. auth.example.com"],
  ['XMPP_SECRET', '(required, or XMPP_SECRET_FILE)', "the component's shared secret"],
  ['XMPP_SECRET_FILE', '(none)', 'a file holding the shared secret instead (one trailing newline is ignored)'],
  ['EXTERNAL_AUTH_COMMAND', '(required)', 'the script and its arguments, split like a POSIX shell word list, run without a shell'],
  ['EXTERNAL_AUTH_PROTOCOL', 'generic', 'generic (one line per request) or ejabberd (2-byte length prefixed)'],
  ['EXTERNAL_AUTH_TIMEOUT', '5', 'seconds one request may take, queueing included (decimals allowed)'],
  ['EXTERNAL_AUTH_PROCESSES', '1', 'how many script processes run (1-256)'],
  ['EXTERNAL_AUTH_BLOCKING', 'true', 'true: one request at a time per process; false: requests are pipelined'],
  ['EXTERNAL_AUTH_ALLOW', 'parent domain of XMPP_DOMAIN', 'comma-separated bare JIDs that may send queries'],
  ['EXTERNAL_AUTH_QUEUE', '10000', 'how many requests may wait for a free process before resource-constraint'],
  ['EXTERNAL_AUTH_PTY', 'false', 'true: run scripts under a raw pseudo-terminal (for scripts that block-buffer stdout)'],
  ['LOG_LEVEL', 'info', LOG_LEVELS.join(' ')],
] as const;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    readonly problem: string,
  ) {
    // One line, always: a value quoted into the message may hold a newline or an escape sequence.
    super(`${variable}: ${problem.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const SECRET_VARIABLES = ['XMPP_SECRET', 'XMPP_SECRET_FILE'];
const MAX_TIMEOUT_SECONDS = 3600;
const MAX_PROCESSES = 256;
const MAX_QUEUE = 1_000_000;

export function loadConfig(env: Env, cwd = process.cwd()): Config {
  const domain = parseDomain('XMPP_DOMAIN', required(env, 'XMPP_DOMAIN'));
  const config: Config = {
    service: parseService(env.XMPP_SERVICE ?? 'xmpp://localhost:5347'),
    domain,
    secret: parseSecret(env),
    command: parseCommand(required(env, 'EXTERNAL_AUTH_COMMAND'), env.PATH ?? '', cwd),
    protocol: parseChoice('EXTERNAL_AUTH_PROTOCOL', env.EXTERNAL_AUTH_PROTOCOL ?? 'generic', SCRIPT_PROTOCOLS),
    timeoutMs: parseSeconds('EXTERNAL_AUTH_TIMEOUT', env.EXTERNAL_AUTH_TIMEOUT ?? '5'),
    processes: parseCount('EXTERNAL_AUTH_PROCESSES', env.EXTERNAL_AUTH_PROCESSES ?? '1', MAX_PROCESSES),
    blocking: parseBoolean('EXTERNAL_AUTH_BLOCKING', env.EXTERNAL_AUTH_BLOCKING ?? 'true'),
    allow: parseAllow(env.EXTERNAL_AUTH_ALLOW, domain),
    queueLimit: parseCount('EXTERNAL_AUTH_QUEUE', env.EXTERNAL_AUTH_QUEUE ?? '10000', MAX_QUEUE),
    pty: parseBoolean('EXTERNAL_AUTH_PTY', env.EXTERNAL_AUTH_PTY ?? 'false'),
    logLevel: parseChoice('LOG_LEVEL', (env.LOG_LEVEL ?? 'info').toLowerCase(), LOG_LEVELS),
    scriptEnv: scriptEnvironment(env),
  };
  return deepFreeze(config);
}

function required(env: Env, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '') throw new ConfigError(name, 'is required but not set');
  return value;
}

function parseService(value: string): Config['service'] {
  const name = 'XMPP_SERVICE';
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(name, `'${value}' is not a URI; expected xmpp://HOST:PORT`);
  }
  if (url.protocol !== 'xmpp:') throw new ConfigError(name, `scheme '${url.protocol.slice(0, -1)}' is not supported; expected xmpp://HOST:PORT`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new ConfigError(name, `'${value}' has no host; expected xmpp://HOST:PORT`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.username !== '') {
    throw new ConfigError(name, `'${value}' must be only xmpp://HOST:PORT`);
  }
  const port = url.port === '' ? 5347 : Number(url.port);
  if (port < 1 || port > 65535) throw new ConfigError(name, `port ${url.port} is out of range`);
  if (url.hash !== '') throw new ConfigError(name, `'${value}' must be only xmpp://HOST:PORT`);
  return { uri: `xmpp://${url.host}${url.port === '' ? ':5347' : ''}`, host, port };
}

function parseDomain(name: string, value: string): string {
  const domain = value.trim().toLowerCase();
  if (!/^[^\s@/:<>&'"\\\p{Cc}]+$/u.test(domain) || domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) {
    throw new ConfigError(name, `'${value}' is not a domain name (a component JID has no '@' or '/')`);
  }
  return domain;
}

function parseSecret(env: Env): string {
  const inline = env.XMPP_SECRET;
  const file = env.XMPP_SECRET_FILE;
  if (inline !== undefined && inline !== '' && file !== undefined && file !== '') {
    throw new ConfigError('XMPP_SECRET', 'set either XMPP_SECRET or XMPP_SECRET_FILE, not both');
  }
  if (file !== undefined && file !== '') {
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError('XMPP_SECRET_FILE', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
    }
    const secret = content.replace(/\r?\n$/, '');
    if (secret === '') throw new ConfigError('XMPP_SECRET_FILE', `${file} is empty`);
    return secret;
  }
  if (inline === undefined || inline === '') throw new ConfigError('XMPP_SECRET', 'is required but not set (or set XMPP_SECRET_FILE)');
  return inline;
}

function parseCommand(value: string, searchPath: string, cwd: string): Config['command'] {
  const name = 'EXTERNAL_AUTH_COMMAND';
  let words: string[];
  try {
    words = splitShellWords(value);
  } catch (error) {
    if (error instanceof ShellWordsError) throw new ConfigError(name, `cannot be split into words: ${error.message}`);
    throw error;
  }
  const [program, ...args] = words;
  if (program === undefined || program === '') throw new ConfigError(name, 'names no program');
  return { file: resolveProgram(name, program, searchPath, cwd), args };
}

/** Resolves like execvp would, so a command that cannot start is caught before we connect. */
export function resolveProgram(name: string, program: string, searchPath: string, cwd: string): string {
  if (program.includes('/')) {
    const file = path.resolve(cwd, program);
    const problem = notRunnable(file);
    if (problem) throw new ConfigError(name, `${program}: ${problem}`);
    return file;
  }
  for (const dir of searchPath.split(':')) {
    const file = path.resolve(cwd, dir === '' ? '.' : dir, program);
    if (!notRunnable(file)) return file;
  }
  throw new ConfigError(name, `${program}: not found in PATH`);
}

function notRunnable(file: string): string | null {
  try {
    if (!statSync(file).isFile()) return 'is not a regular file';
  } catch {
    return 'no such file';
  }
  try {
    accessSync(file, constants.X_OK);
  } catch {
    return 'is not executable (chmod +x?)';
  }
  return null;
}

function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  const choice = choices.find((c) => c === value.trim());
  if (choice === undefined) throw new ConfigError(name, `'${value}' is not one of: ${choices.join(', ')}`);
  return choice;
}

function parseSeconds(name: string, value: string): number {
  const text = value.trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw new ConfigError(name, `'${value}' is not a number of seconds`);
  const seconds = Number(text);
  if (!(seconds > 0) || seconds > MAX_TIMEOUT_SECONDS) throw new ConfigError(name, `'${value}' must be more than 0 and at most ${MAX_TIMEOUT_SECONDS} seconds`);
  return Math.max(1, Math.round(seconds * 1000));
}

function parseCount(name: string, value: string, max: number): number {
  const text = value.trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(name, `'${value}' is not a whole number`);
  const count = Number(text);
  if (count < 1 || count > max) throw new ConfigError(name, `'${value}' must be from 1 to ${max}`);
  return count;
}

function parseBoolean(name: string, value: string): boolean {
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  throw new ConfigError(name, `'${value}' is not true or false`);
}

function parseAllow(value: string | undefined, domain: string): BareJid[] {
  const name = 'EXTERNAL_AUTH_ALLOW';
  if (value === undefined || value.trim() === '') {
    const dot = domain.indexOf('.');
    if (dot === -1 || dot === domain.length - 1) {
      throw new ConfigError(name, `is required: XMPP_DOMAIN '${domain}' has no parent domain to allow by default`);
    }
    return [{ local: null, domain: domain.slice(dot + 1) }];
  }
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  if (entries.length === 0) throw new ConfigError(name, 'lists no JID');
  return entries.map((entry) => {
    const jid = parseBareJid(entry);
    if (jid === null) throw new ConfigError(name, `'${entry}' is not a bare JID (user@domain or domain, no resource)`);
    return jid;
  });
}

function scriptEnvironment(env: Env): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !SECRET_VARIABLES.includes(key)) result[key] = value;
  }
  return result;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
