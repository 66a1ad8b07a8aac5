import { SCRIPT_PROTOCOLS } from '../codec/codec.js';
import type { BareJid } from '../core/bare-jid.js';
import {
  ConfigError,
  parseAllow,
  parseBoolean,
  parseChoice,
  parseCommand,
  parseCount,
  parseDomain,
  parseListen,
  parseSeconds,
  parseService,
  readSecretFile,
  type Command,
  type ListenAddress,
  type Service,
} from './parsers.js';

export { ConfigError } from './parsers.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const MAX_TIMEOUT_SECONDS = 3600;
const MAX_PROCESSES = 256;
const MAX_QUEUE = 1_000_000;
const MAX_CACHE_SECONDS = 30 * 24 * 3600;
const MAX_CACHE_SIZE = 10_000_000;

/** Fallback of a setting whose default depends on another one. */
const UNSET = '\u0000unset';

type Env = Readonly<Record<string, string | undefined>>;

interface Context {
  readonly env: Env;
  readonly cwd: string;
  /** Values parsed so far (the table is parsed in order); absent where they were invalid. */
  readonly parsed: Partial<Record<string, unknown>>;
}

export interface Variable<T = unknown> {
  readonly name: string;
  /** What an unset variable counts as; null when it is required. */
  readonly fallback: string | null;
  /** The default as people read it, in --help and in the README's table. */
  readonly shown: string;
  readonly help: string;
  readonly parse: (value: string, context: Context) => T;
}

function variable<T>(name: string, fallback: string | null, shown: string, help: string, parse: (value: string, context: Context) => T): Variable<T> {
  return { name, fallback, shown, help, parse };
}

/**
 * Every setting, once: its variable, default, meaning and parser. This table drives parsing,
 * `--help`, and a test that the README's table says the same. Order matters where one setting's
 * default depends on another's value (the allow list on the domain).
 */
export const SETTINGS = {
  service: variable(
    'XMPP_SERVICE',
    'xmpp://localhost:5347',
    'xmpp://localhost:5347',
    "where the server's component listener is: xmpp://HOST:PORT, or xmpps://HOST:PORT for direct TLS",
    (v) => parseService('XMPP_SERVICE', v),
  ),
  domain: variable('XMPP_DOMAIN', null, 'required', "the component's own JID, e.g. auth.example.com", (v) => parseDomain('XMPP_DOMAIN', v)),
  secretFile: variable('XMPP_SECRET_FILE', '', 'none', 'a file holding the shared secret instead of XMPP_SECRET (one trailing newline ignored)', (v) =>
    v.trim() === '' ? null : v,
  ),
  secret: variable('XMPP_SECRET', '', 'required (or XMPP_SECRET_FILE)', "the component's shared secret", (v, { parsed, env }) => {
    const file = parsed.secretFile as string | null | undefined;
    if (v !== '' && file) throw new ConfigError('XMPP_SECRET', 'set either XMPP_SECRET or XMPP_SECRET_FILE, not both');
    if (file) return readSecretFile('XMPP_SECRET_FILE', file);
    if (v === '' && file === undefined && (env.XMPP_SECRET_FILE ?? '') !== '') return ''; // the file's own error is reported
    if (v === '') throw new ConfigError('XMPP_SECRET', 'is required but not set (or set XMPP_SECRET_FILE)');
    return v;
  }),
  command: variable(
    'EXTERNAL_AUTH_COMMAND',
    null,
    'required',
    'the script and its arguments, split like a POSIX shell word list (quotes and backslashes respected, nothing expanded), run without a shell',
    (v, { env, cwd }): Command => parseCommand('EXTERNAL_AUTH_COMMAND', v, env.PATH ?? '', cwd),
  ),
  protocol: variable(
    'EXTERNAL_AUTH_PROTOCOL',
    'generic',
    'generic',
    'generic (one line per request), ejabberd (2-byte length prefixed) or tagged (each request and answer carries an id)',
    (v) => parseChoice('EXTERNAL_AUTH_PROTOCOL', v, SCRIPT_PROTOCOLS),
  ),
  timeoutMs: variable(
    'EXTERNAL_AUTH_TIMEOUT',
    '5',
    '5',
    'seconds one request may take from arrival to answer, waiting and any retry included (decimals allowed)',
    (v) => parseSeconds('EXTERNAL_AUTH_TIMEOUT', v, MAX_TIMEOUT_SECONDS),
  ),
  processes: variable('EXTERNAL_AUTH_PROCESSES', '1', '1', `how many script processes run (1-${MAX_PROCESSES})`, (v) =>
    parseCount('EXTERNAL_AUTH_PROCESSES', v, MAX_PROCESSES),
  ),
  // tagged exists so that one process can serve many requests at once: unset, it pipelines.
  blocking: variable(
    'EXTERNAL_AUTH_BLOCKING',
    UNSET,
    'true (false with tagged)',
    'true: one request in flight per process (lockstep); false: requests are pipelined to each process',
    (v, { parsed }) => (v === UNSET ? parsed.protocol !== 'tagged' : parseBoolean('EXTERNAL_AUTH_BLOCKING', v)),
  ),
  allow: variable(
    'EXTERNAL_AUTH_ALLOW',
    '',
    'the parent domain of XMPP_DOMAIN',
    'comma-separated bare JIDs that may query; example.com matches example.com and example.com/x, never alice@example.com',
    (v, { parsed }): BareJid[] => parseAllow('EXTERNAL_AUTH_ALLOW', v, parsed.domain as string | undefined),
  ),
  queueLimit: variable('EXTERNAL_AUTH_QUEUE', '10000', '10000', 'how many requests may wait for a free process; beyond that resource-constraint', (v) =>
    parseCount('EXTERNAL_AUTH_QUEUE', v, MAX_QUEUE),
  ),
  pty: variable('EXTERNAL_AUTH_PTY', 'false', 'false', 'true: run scripts under a raw pseudo-terminal, for scripts that block-buffer stdout', (v) =>
    parseBoolean('EXTERNAL_AUTH_PTY', v),
  ),
  cacheTtlMs: variable('EXTERNAL_AUTH_CACHE_TTL', '0', '0', 'seconds a password the script accepted is accepted again without asking it; 0: no cache', (v) =>
    parseSeconds('EXTERNAL_AUTH_CACHE_TTL', v, MAX_CACHE_SECONDS, true),
  ),
  cacheStaleMs: variable(
    'EXTERNAL_AUTH_CACHE_STALE',
    '0',
    '0',
    'further seconds during which a cached acceptance still answers when the script fails (timeout, crash, down); 0: never',
    (v) => parseSeconds('EXTERNAL_AUTH_CACHE_STALE', v, MAX_CACHE_SECONDS, true),
  ),
  cacheSize: variable('EXTERNAL_AUTH_CACHE_SIZE', '100000', '100000', 'most cached entries (the least recently used go first)', (v) =>
    parseCount('EXTERNAL_AUTH_CACHE_SIZE', v, MAX_CACHE_SIZE),
  ),
  httpListen: variable(
    'HTTP_LISTEN',
    '',
    'off',
    '[HOST:]PORT of an HTTP server with /metrics and /health (host defaults to 127.0.0.1)',
    (v): ListenAddress | null => (v.trim() === '' ? null : parseListen('HTTP_LISTEN', v)),
  ),
  logLevel: variable('LOG_LEVEL', 'info', 'info', LOG_LEVELS.join(' '), (v) => parseChoice('LOG_LEVEL', v, LOG_LEVELS)),
} as const;

type Settings = typeof SETTINGS;
type Parsed = { readonly [K in keyof Settings]: ReturnType<Settings[K]['parse']> };

export interface Config extends Omit<Parsed, 'secretFile'> {
  readonly service: Service;
  readonly command: Command;
  /** The environment scripts run with: ours, minus every secret. */
  readonly scriptEnv: Readonly<Record<string, string>>;
  /** Variables that look like ours but are not (a typo silently ignored is worse than a warning). */
  readonly warnings: readonly string[];
}

/** Every configuration error at once, so a broken deployment is fixed in one round. */
export class ConfigErrors extends Error {
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((error) => error.message).join('\n'));
    this.name = 'ConfigErrors';
  }
}

const SECRET_VARIABLES = ['XMPP_SECRET', 'XMPP_SECRET_FILE'];
const OUR_PREFIXES = ['XMPP_', 'EXTERNAL_AUTH_'];
/** HTTP_PROXY and friends are other programs' settings: only near misses of ours are worth a word. */
const LOOSE_PREFIXES = ['HTTP_', 'LOG_'];

/**
 * Parses the given settings (in the table's order) with the table's parsers, reporting every
 * error at once: the daemon reads them all, `check-script` only the script's, `check-server`
 * only the server's.
 */
export function loadSettings<K extends keyof Settings>(keys: readonly K[], env: Env, cwd = process.cwd()): Pick<Parsed, K> {
  const parsed: Record<string, unknown> = {};
  const errors: ConfigError[] = [];
  for (const [key, spec] of Object.entries(SETTINGS) as Array<[K, Variable]>) {
    if (!keys.includes(key)) continue;
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
  return parsed as Pick<Parsed, K>;
}

export function loadConfig(env: Env, cwd = process.cwd()): Config {
  const { secretFile: _file, ...settings } = loadSettings(Object.keys(SETTINGS) as Array<keyof Settings>, env, cwd);
  const config: Config = { ...settings, scriptEnv: scriptEnvironment(env), warnings: unknownVariableWarnings(env) };
  return deepFreeze(config);
}

export function unknownVariableWarnings(env: Env): string[] {
  const known = Object.values(SETTINGS).map((spec) => spec.name);
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (known.includes(name)) continue;
    const ours = OUR_PREFIXES.some((prefix) => name.startsWith(prefix));
    const loose = LOOSE_PREFIXES.some((prefix) => name.startsWith(prefix));
    if (!ours && !loose) continue;
    const closest = closestName(name, known);
    if (closest.distance <= 3) warnings.push(`${name} is not a setting of extauth-component and is ignored; did you mean ${closest.name}?`);
    else if (ours) warnings.push(`${name} is not a setting of extauth-component and is ignored (see --help)`);
  }
  return warnings;
}

function closestName(name: string, candidates: readonly string[]): { name: string; distance: number } {
  let best = { name: candidates[0] ?? '', distance: Infinity };
  for (const candidate of candidates) {
    const distance = editDistance(name, candidate);
    if (distance < best.distance) best = { name: candidate, distance };
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export function scriptEnvironment(env: Env): Record<string, string> {
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
