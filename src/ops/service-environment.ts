import { SETTINGS } from '../config/config.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The PATH systemd gives a service (it does not inherit the caller's). */
export const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

/**
 * What a systemd system service gets besides its EnvironmentFile: PATH (fixed, above), the
 * system locale, and, with `User=`, that user's HOME, USER, LOGNAME and SHELL. `check-script`
 * is run as the service user, so the caller's values of these stand for the service's.
 */
const SERVICE_PROVIDED = /^(LANG|LANGUAGE|LC_[A-Z_]+|HOME|USER|LOGNAME|SHELL)$/;

export interface ServiceEnvironment {
  /** The environment the service (and so its script) would run with. */
  readonly env: Record<string, string>;
  /** Names of the caller's variables the service would not have (never their values). */
  readonly dropped: readonly string[];
  /** Lines of the environment file that systemd would ignore, and why. */
  readonly warnings: readonly string[];
}

/**
 * The environment the service would have: systemd's own few variables, then the environment
 * file's when one is given, or else the caller's settings of extauth-component (so that a check
 * from a shell works without a file). Everything else the caller has is dropped and named:
 * `PYTHONUNBUFFERED=1` in a shell must not make a script that never flushes look fine.
 */
export function serviceEnvironment(caller: Env, envFile?: { readonly text: string; readonly name: string }): ServiceEnvironment {
  const env: Record<string, string> = { PATH: SERVICE_PATH };
  const settings = new Set(Object.values(SETTINGS).map((spec) => spec.name));
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(caller)) {
    if (value === undefined) continue;
    if (SERVICE_PROVIDED.test(name) || (envFile === undefined && settings.has(name))) env[name] = value;
    else if (name !== 'PATH' || value !== SERVICE_PATH) dropped.push(name);
  }
  let warnings: string[] = [];
  if (envFile !== undefined) {
    const parsed = parseEnvironmentFile(envFile.text);
    Object.assign(env, parsed.variables);
    warnings = parsed.warnings.map((warning) => `${envFile.name}: ${warning}`);
  }
  return { env, dropped: dropped.sort(), warnings };
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Reads a systemd EnvironmentFile: `KEY=VALUE` lines; blank lines and lines starting with `#`
 * or `;` are ignored; a value may be in single quotes (taken literally) or double quotes
 * (backslash escapes `\"`, `\\`, `` \` `` and `\$`, and may span lines); outside quotes a
 * backslash escapes the next character, one at the end of a line joins the next line, and
 * trailing blanks are dropped. A line without a valid name is ignored, with a warning, as
 * systemd ignores it.
 */
export function parseEnvironmentFile(text: string): { variables: Record<string, string>; warnings: string[] } {
  const variables: Record<string, string> = {};
  const warnings: string[] = [];
  let i = 0;
  let line = 1;
  while (i < text.length) {
    const start = line;
    // One logical line: the key, then the value up to an unquoted, unescaped newline.
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (text[i] === '\n') {
      i++;
      line++;
      continue;
    }
    if (text[i] === '#' || text[i] === ';') {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    let key = '';
    while (i < text.length && text[i] !== '=' && text[i] !== '\n') key += text[i++];
    key = key.trim();
    if (text[i] !== '=') {
      warnings.push(`line ${start} has no '=' and is ignored`);
      continue;
    }
    i++;
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    let value = '';
    /** Where unquoted trailing blanks begin, to drop them. */
    let keep = 0;
    let quote: '"' | "'" | null = null;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (quote === "'") {
        if (c === "'") quote = null;
        else value += c;
        if (c === '\n') line++;
        keep = value.length;
      } else if (quote === '"') {
        if (c === '"') quote = null;
        else if (c === '\\' && i + 1 < text.length && '"\\`$\n'.includes(text[i + 1]!)) {
          if (text[++i] === '\n') line++;
          else value += text[i];
        } else {
          if (c === '\n') line++;
          value += c;
        }
        keep = value.length;
      } else if (c === '\n') {
        break;
      } else if (c === '"' || c === "'") {
        quote = c;
      } else if (c === '\\' && i + 1 < text.length) {
        if (text[++i] === '\n') line++;
        else value += text[i];
        keep = value.length;
      } else {
        value += c;
        if (c !== ' ' && c !== '\t') keep = value.length;
      }
    }
    value = value.slice(0, keep);
    if (quote !== null) warnings.push(`line ${start} has an unclosed ${quote} quote`);
    // Never the text itself: a misplaced password would be printed.
    if (!NAME.test(key)) warnings.push(`line ${start} is ignored: what comes before '=' is not a valid variable name`);
    else variables[key] = value;
  }
  return { variables, warnings };
}
