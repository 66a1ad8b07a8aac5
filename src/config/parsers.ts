import { accessSync, constants, openSync, readSync, closeSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import { parseBareJid, type BareJid } from '../core/bare-jid.js';
import { ShellWordsError, splitShellWords } from './shell-words.js';

/** A value that is wrong, said in words that name the variable and what to change. */
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

export interface Service {
  readonly uri: string;
  readonly host: string;
  readonly port: number;
  /** xmpps://: direct TLS, the server's certificate verified. */
  readonly tls: boolean;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface Command {
  readonly file: string;
  readonly args: readonly string[];
}

export function parseService(name: string, value: string): Service {
  const shape = 'expected xmpp://HOST:PORT (or xmpps://HOST:PORT for TLS)';
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ConfigError(name, `'${value}' is not a URI; ${shape}`);
  }
  if (url.protocol !== 'xmpp:' && url.protocol !== 'xmpps:') throw new ConfigError(name, `scheme '${url.protocol.slice(0, -1)}' is not supported; ${shape}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw new ConfigError(name, `'${value}' has no host; ${shape}`);
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.username !== '' || url.hash !== '') {
    throw new ConfigError(name, `'${value}' must be only HOST:PORT after the scheme; ${shape}`);
  }
  const port = url.port === '' ? 5347 : Number(url.port);
  if (port < 1 || port > 65535) throw new ConfigError(name, `port ${url.port} is out of range`);
  const scheme = url.protocol.slice(0, -1);
  return { uri: `${scheme}://${url.host}${url.port === '' ? ':5347' : ''}`, host, port, tls: scheme === 'xmpps' };
}

/** `[HOST:]PORT`; the host defaults to loopback so metrics are not published by accident. */
export function parseListen(name: string, value: string): ListenAddress {
  const text = value.trim();
  const match = /^(?:(\[[^\]]+\]|[^:]+|[^\]]*:[^\]]*(?=:\d+$)):)?(\d+)$/.exec(text);
  const problem = `'${value}' is not [HOST:]PORT, e.g. 9100 or 127.0.0.1:9100 or [::1]:9100`;
  if (match === null) throw new ConfigError(name, problem);
  const host = (match[1] ?? '127.0.0.1').replace(/^\[(.*)\]$/, '$1');
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new ConfigError(name, `port ${match[2]} is out of range (1-65535)`);
  if (host === '' || (host.includes(':') && isIP(host) !== 6)) throw new ConfigError(name, problem);
  return { host, port };
}

export function parseDomain(name: string, value: string): string {
  const domain = value.trim().toLowerCase();
  if (!/^[^\s@/:<>&'"\\\p{Cc}]+$/u.test(domain) || domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) {
    throw new ConfigError(name, `'${value}' is not a domain name (a component JID has no '@' or '/')`);
  }
  return domain;
}

export function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  const choice = choices.find((c) => c === value.trim().toLowerCase());
  if (choice === undefined) throw new ConfigError(name, `'${value}' is not one of: ${choices.join(', ')}`);
  return choice;
}

/** Seconds as milliseconds; `allowZero` for settings where 0 means off. */
export function parseSeconds(name: string, value: string, max: number, allowZero = false): number {
  const text = value.trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(text)) throw new ConfigError(name, `'${value}' is not a number of seconds`);
  const seconds = Number(text);
  if (allowZero && seconds === 0) return 0;
  if (!(seconds > 0) || seconds > max) throw new ConfigError(name, `'${value}' must be more than 0 and at most ${max} seconds`);
  return Math.max(1, Math.round(seconds * 1000));
}

export function parseCount(name: string, value: string, max: number): number {
  const text = value.trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(name, `'${value}' is not a whole number`);
  const count = Number(text);
  if (count < 1 || count > max) throw new ConfigError(name, `'${value}' must be from 1 to ${max}`);
  return count;
}

export function parseBoolean(name: string, value: string): boolean {
  const text = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  throw new ConfigError(name, `'${value}' is not true or false`);
}

export function parseAllow(name: string, value: string, domain: string | undefined): BareJid[] {
  if (value.trim() === '') {
    if (domain === undefined) return [];
    const dot = domain.indexOf('.');
    if (dot === -1 || dot === domain.length - 1) {
      throw new ConfigError(name, `is required: XMPP_DOMAIN '${domain}' has no parent domain to allow by default`);
    }
    return [{ local: null, domain: domain.slice(dot + 1) }];
  }
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) throw new ConfigError(name, 'lists no JID');
  return entries.map((entry) => {
    const jid = parseBareJid(entry);
    if (jid === null) throw new ConfigError(name, `'${entry}' is not a bare JID (user@domain or domain, no resource)`);
    return jid;
  });
}

export function readSecretFile(name: string, file: string): string {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(name, `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const secret = content.replace(/\r?\n$/, '');
  if (secret === '') throw new ConfigError(name, `${file} is empty`);
  return secret;
}

export function parseCommand(name: string, value: string, searchPath: string, cwd: string): Command {
  let words: string[];
  try {
    words = splitShellWords(value);
  } catch (error) {
    if (error instanceof ShellWordsError) throw new ConfigError(name, `cannot be split into words: ${error.message}`);
    throw error;
  }
  const [program, ...args] = words;
  if (program === undefined || program === '') throw new ConfigError(name, 'names no program');
  const file = resolveProgram(name, program, searchPath, cwd);
  checkInterpreter(name, file, searchPath, cwd);
  return { file, args };
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

/**
 * A script whose `#!` interpreter is missing passes every other check and then fails at each
 * start with ENOENT, which reads like the script itself is missing. Catch it here, by name.
 */
function checkInterpreter(name: string, file: string, searchPath: string, cwd: string): void {
  const line = firstLine(file);
  if (line === null || !line.startsWith('#!')) return;
  if (line.endsWith('\r')) {
    throw new ConfigError(
      name,
      `${file}: its #! line ends in a carriage return (the file has Windows line endings); convert it with dos2unix or sed -i 's/\\r$//'`,
    );
  }
  const [interpreter, ...rest] = line
    .slice(2)
    .trim()
    .split(/[ \t]+/);
  if (interpreter === undefined || interpreter === '') throw new ConfigError(name, `${file}: its #! line names no interpreter`);
  const problem = notRunnable(interpreter);
  if (problem) throw new ConfigError(name, `${file}: its #! interpreter ${interpreter}: ${problem}`);
  // `#!/usr/bin/env python3`: env itself exists; what matters is the program it will look up.
  if (path.basename(interpreter) === 'env') {
    const program = rest.find((word) => !word.startsWith('-') && !word.includes('='));
    if (program !== undefined) {
      try {
        resolveProgram(name, program, searchPath, cwd);
      } catch {
        throw new ConfigError(name, `${file}: its #! line runs '${program}' through env, and ${program} is not found in PATH (install it or fix the #! line)`);
      }
    }
  }
}

function firstLine(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buffer = Buffer.alloc(256);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, length).toString('latin1');
    const end = text.indexOf('\n');
    return end === -1 ? text : text.slice(0, end);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
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
