// A throwaway Prosody (0.12 or 13, whichever is asked for) for end-to-end tests and the demo: generated config in a temp dir,
// free loopback ports, the shim from examples/prosody via plugin_paths, run in the foreground
// (`prosody --config FILE -F`) and stopped with SIGTERM. Plus starting the component against it.
import { canConnect, freePorts, LOOPBACK, randomSecret } from './ports.js';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ComponentProcess, REPO_ROOT } from './component-process.js';
import { sleep } from './wait.js';

export const SHIM_DIR = join(REPO_ROOT, 'examples/prosody');
/** The generic-protocol users-file script used by the Prosody tests and the demo. */
export const USERS_SCRIPT = join(REPO_ROOT, 'test/fixtures/e2e/users-generic.mjs');
const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 10_000;

/** Where unpacked server generations live (see .ci/run): one directory per Debian suite. */
export const TEST_SERVERS_DIR = process.env.EXTAUTH_TEST_SERVERS ?? '/opt/extauth-test-servers';

/** The Prosody generations the project supports; with CI=true each must be present. */
export const SUPPORTED_PROSODY = ['0.12', '13'] as const;

export interface ProsodyInstall {
  /** The prosody launcher. */
  executable: string;
  /** e.g. `0.12.3` or `13.0.1`. */
  version: string;
  /** `Prosody 13.0.1`: what test titles and reports name. */
  label: string;
}

/**
 * Every Prosody on this machine, oldest first: the one on PATH and those unpacked under
 * TEST_SERVERS_DIR (`<dir>/<suite>/usr/bin/prosody`), one per version.
 */
export function prosodyInstalls(): ProsodyInstall[] {
  const executables: string[] = [];
  try {
    const onPath = execFileSync('sh', ['-c', 'command -v prosody'], { encoding: 'utf8' }).trim();
    if (onPath) executables.push(onPath);
  } catch {
    // not on PATH
  }
  for (const dir of subdirs(TEST_SERVERS_DIR)) {
    const executable = join(dir, 'usr/bin/prosody');
    if (existsSync(executable)) executables.push(executable);
  }
  const byVersion = new Map<string, ProsodyInstall>();
  for (const executable of executables) {
    const version = prosodyVersion(executable);
    if (version && !byVersion.has(version)) byVersion.set(version, { executable, version, label: `Prosody ${version}` });
  }
  return [...byVersion.values()].sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }));
}

/** The version a prosody launcher runs: `prosody.version` in its CFG_SOURCEDIR. */
function prosodyVersion(executable: string): string | undefined {
  try {
    const source = /^CFG_SOURCEDIR\s*=\s*'([^']+)'/m.exec(readFileSync(realpathSync(executable), 'utf8'))?.[1];
    const file = join(source ?? '/usr/lib/prosody', 'prosody.version');
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The prosody executable to use by default (the newest), or undefined when none is installed. */
export function findProsody(): string | undefined {
  return prosodyInstalls().at(-1)?.executable;
}

/**
 * The Prosody generations to run the e2e tests against, and why some cannot run. Without
 * CI=true a missing generation is only reported (the caller skips); with CI=true it is an error:
 * the e2e suite must not silently pass without it.
 */
export function prosodyTestTargets(): { installs: ProsodyInstall[]; missing: string | undefined } {
  const installs = prosodyInstalls();
  const absent = SUPPORTED_PROSODY.filter((generation) => !installs.some((i) => i.version === generation || i.version.startsWith(`${generation}.`)));
  const missing = absent.length === 0 ? undefined : `Prosody ${absent.join(' and ')} not found (on PATH or in ${TEST_SERVERS_DIR}; .ci/run installs both)`;
  if (missing && process.env.CI === 'true') throw new Error(`Prosody e2e tests cannot run in CI: ${missing}`);
  return { installs, missing };
}

/**
 * undefined when Prosody can be used; else the reason to skip. With CI=true a missing Prosody is
 * an error instead.
 */
export function prosodySkipReason(): string | undefined {
  if (prosodyTestTargets().installs.length > 0) return undefined;
  return 'prosody is not installed (sudo apt-get install prosody)';
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
      .map((entry) => join(dir, entry.name))
      .sort();
  } catch {
    return [];
  }
}

export interface ProsodyOptions {
  /** The VirtualHost. Default `localhost`. */
  vhost?: string;
  /** Component JIDs the server accepts, each with its secret. Default: `auth.<vhost>`, random secret. */
  components?: Record<string, string>;
  /** `external_auth_component`: one JID or a failover list. Default: every component, in order. */
  authComponents?: string[];
  /** `external_auth_timeout` in seconds. Default: the shim's. */
  authTimeout?: number;
  /** `external_auth_scram`, e.g. `['sha-256']`. Default: not set (PLAIN only). */
  scram?: string[];
  /** allow_unencrypted_plain_auth: PLAIN offered without TLS. Default true. */
  allowUnencryptedPlain?: boolean;
  /** A certificate for the VirtualHost: c2s then offers STARTTLS (mod_tls). Default: no TLS. */
  tls?: { certFile: string; keyFile: string };
  /** allow_registration: in-band registration (XEP-0077) on unauthenticated streams. Default false. */
  allowRegistration?: boolean;
  /** Loads mod_admin_shell (socket in the temp dir) so that shell() can run console commands. */
  adminShell?: boolean;
  /** Prosody log level for the log file. Default `debug` (so tests can check it holds no password). */
  logLevel?: 'debug' | 'info' | 'warn';
  label?: string;
  /** Which Prosody to run. Default: the newest installed. */
  install?: ProsodyInstall | undefined;
}

export class ProsodyServer {
  private output = '';
  private exitCode: number | null | undefined = undefined;
  private child!: ChildProcess;
  private readonly killOnExit = () => this.child.kill('SIGKILL');
  /** Resolves when the current Prosody process has exited. */
  exited!: Promise<void>;

  private constructor(
    /** The Prosody this server runs. */
    readonly install: ProsodyInstall,
    /** The temp dir holding config, data and log; removed by stop(). */
    readonly dir: string,
    readonly vhost: string,
    readonly c2sPort: number,
    readonly componentPort: number,
    /** Component JID -> secret. */
    readonly components: Record<string, string>,
    readonly label: string,
  ) {}

  private spawn(): void {
    const child = spawn(this.install.executable, ['--config', join(this.dir, 'prosody.cfg.lua'), '-F'], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exitCode = undefined;
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.output += chunk));
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitCode = code ?? (signal ? -1 : null);
        process.off('exit', this.killOnExit);
        resolve();
      }),
    );
    process.once('exit', this.killOnExit);
  }

  readonly host = LOOPBACK;

  /** XMPP_SERVICE for a component. */
  get serviceUri(): string {
    return `xmpp://${LOOPBACK}:${this.componentPort}`;
  }

  get logFile(): string {
    return join(this.dir, 'prosody.log');
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Prosody's log file and console output. */
  logText(): string {
    const file = existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
    return `${file}${this.output ? `\n--- console ---\n${this.output}` : ''}`;
  }

  /** How often Prosody has logged a successful authentication of this component's stream. */
  componentLogins(domain: string): number {
    return this.logText()
      .split('\n')
      .filter((line) => line.startsWith(`${domain}:component`) || line.includes(` ${domain}:component`))
      .filter((line) => line.includes('External component successfully authenticated')).length;
  }

  static async start(options: ProsodyOptions = {}): Promise<ProsodyServer> {
    const prosody = options.install ?? prosodyInstalls().at(-1);
    if (!prosody) throw new Error('prosody is not installed (sudo apt-get install prosody)');
    const vhost = options.vhost ?? 'localhost';
    const components = options.components ?? { [`auth.${vhost}`]: randomSecret() };
    const [c2sPort, componentPort] = await freePorts(2);
    const dir = mkdtempSync(join(tmpdir(), 'extauth-prosody-'));
    mkdirSync(join(dir, 'certs')); // none: TLS is not offered, but Prosody wants the directory
    writeFileSync(
      join(dir, 'prosody.cfg.lua'),
      prosodyConfig({
        dir,
        vhost,
        c2sPort: c2sPort!,
        componentPort: componentPort!,
        components,
        authComponents: options.authComponents ?? Object.keys(components),
        authTimeout: options.authTimeout,
        scram: options.scram,
        allowUnencryptedPlain: options.allowUnencryptedPlain ?? true,
        tls: options.tls,
        allowRegistration: options.allowRegistration ?? false,
        adminShell: options.adminShell ?? false,
        logLevel: options.logLevel ?? 'debug',
      }),
    );
    const server = new ProsodyServer(prosody, dir, vhost, c2sPort!, componentPort!, components, `${options.label ?? 'prosody'} (${prosody.label})`);
    await server.launch();
    return server;
  }

  private async launch(): Promise<void> {
    this.spawn();
    try {
      await this.waitListening();
    } catch (error) {
      await this.stop({ keepDir: true });
      throw error;
    }
  }

  /** Stops Prosody and starts it again: same config, ports, data and log file. */
  async restart(): Promise<void> {
    await this.terminate();
    await this.launch();
  }

  /** SIGTERM (SIGKILL after a grace period), then removes the temp dir unless keepDir. */
  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    await this.terminate();
    if (!options.keepDir && !process.env.E2E_KEEP_PROSODY) rmSync(this.dir, { recursive: true, force: true });
  }

  private async terminate(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /**
   * Runs one console command through `prosodyctl shell` (needs the adminShell option), e.g.
   * `module:reload("auth_external_component", "localhost")`. Returns its output.
   */
  shell(command: string): Promise<string> {
    const prosodyctl = join(dirname(this.install.executable), 'prosodyctl');
    return new Promise((resolve, reject) => {
      execFile(prosodyctl, ['--config', join(this.dir, 'prosody.cfg.lua'), 'shell', command], { cwd: this.dir, timeout: 20_000 }, (error, stdout, stderr) => {
        if (error) reject(this.failure(`prosodyctl shell ${command} failed: ${error.message}\n${stdout}${stderr}`));
        else resolve(`${stdout}${stderr}`);
      });
    });
  }

  /** A failure message with the tail of Prosody's log. */
  failure(message: string): Error {
    return new Error(`${this.label}: ${message}\n--- prosody log (tail, ${this.dir}) ---\n${this.logText().split('\n').slice(-40).join('\n')}`);
  }

  private async waitListening(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (!this.running) throw this.failure(`prosody exited (code ${this.exitCode}) before listening`);
      if ((await canConnect(this.c2sPort)) && (await canConnect(this.componentPort))) return;
      if (Date.now() > deadline) throw this.failure(`not listening on ${this.c2sPort}/${this.componentPort} within ${START_TIMEOUT_MS} ms`);
      await sleep(100);
    }
  }
}

interface ConfigValues {
  dir: string;
  vhost: string;
  c2sPort: number;
  componentPort: number;
  components: Record<string, string>;
  authComponents: string[];
  authTimeout: number | undefined;
  scram: string[] | undefined;
  allowUnencryptedPlain: boolean;
  tls: { certFile: string; keyFile: string } | undefined;
  allowRegistration: boolean;
  adminShell: boolean;
  logLevel: string;
}

/** The whole generated prosody.cfg.lua: loopback only, no s2s, no HTTP, TLS only when asked for. */
export function prosodyConfig(v: ConfigValues): string {
  const lines = [
    '-- Generated for a throwaway test instance by support/prosody.ts',
    typeof process.getuid === 'function' && process.getuid() === 0 ? 'run_as_root = true' : '',
    `pidfile = ${lua(join(v.dir, 'prosody.pid'))}`,
    `data_path = ${lua(join(v.dir, 'data'))}`,
    `certificates = ${lua(join(v.dir, 'certs'))}`,
    `plugin_paths = { ${lua(SHIM_DIR)} }`,
    `log = { { levels = { min = ${lua(v.logLevel)} }, to = "file", filename = ${lua(join(v.dir, 'prosody.log'))} }, { levels = { min = "error" }, to = "console" } }`,
    'interfaces = { "127.0.0.1" }',
    `c2s_ports = { ${v.c2sPort} }`,
    'component_interfaces = { "127.0.0.1" }',
    `component_ports = { ${v.componentPort} }`,
    's2s_ports = { }',
    'http_ports = { }',
    'https_ports = { }',
    `modules_enabled = { "saslauth", "disco", "ping", "register", "roster"${v.tls ? ', "tls"' : ''}${v.adminShell ? ', "admin_shell"' : ''} }`,
    v.tls ? `ssl = { certificate = ${lua(v.tls.certFile)}, key = ${lua(v.tls.keyFile)} }` : '',
    v.adminShell ? `admin_socket = ${lua(join(v.dir, 'prosody.sock'))}` : '',
    'modules_disabled = { "s2s", "s2s_auth_certs" }',
    'c2s_require_encryption = false',
    `allow_unencrypted_plain_auth = ${v.allowUnencryptedPlain}`,
    `allow_registration = ${v.allowRegistration} -- either way, a logged-in user may change their password (XEP-0077)`,
    '',
    `VirtualHost ${lua(v.vhost)}`,
    '  authentication = "external_component"',
    `  external_auth_component = { ${v.authComponents.map(lua).join(', ')} }`,
    v.authTimeout === undefined ? '' : `  external_auth_timeout = ${v.authTimeout}`,
    v.scram === undefined ? '' : `  external_auth_scram = { ${v.scram.map(lua).join(', ')} }`,
    '',
  ];
  for (const [jid, secret] of Object.entries(v.components)) {
    lines.push(`Component ${lua(jid)}`, `  component_secret = ${lua(secret)}`, '');
  }
  return lines.filter((line, i, all) => line !== '' || all[i - 1] !== '').join('\n');
}

/** A Lua string literal. */
function lua(value: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new Error(`refusing a control character in a config value: ${JSON.stringify(value)}`);
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** Quotes a word for EXTERNAL_AUTH_COMMAND (split like a POSIX shell word list). */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface ProsodyComponentOptions {
  /** The component JID; must be one of the server's components. */
  domain: string;
  /** EXTERNAL_AUTH_COMMAND. Default: the users-file fixture script on `usersFile`. */
  command?: string;
  usersFile?: string;
  /** Extra environment: EXTERNAL_AUTH_TIMEOUT, E2E_REQUEST_LOG, LOG_LEVEL, ... */
  env?: Record<string, string>;
  label?: string;
}

/**
 * Starts `node dist/main.js` against the server and waits until it is online: its "connected"
 * log line, or -- should that line look different -- Prosody logging the component's stream as
 * authenticated.
 */
export async function startComponentFor(server: ProsodyServer, o: ProsodyComponentOptions): Promise<ComponentProcess> {
  const secret = server.components[o.domain];
  if (secret === undefined) throw new Error(`${o.domain} is not a component of this Prosody`);
  const command = o.command ?? `${shellWord(process.execPath)} ${shellWord(USERS_SCRIPT)} ${shellWord(o.usersFile ?? '')}`;
  const loginsBefore = server.componentLogins(o.domain);
  return ComponentProcess.start({
    label: o.label ?? o.domain,
    service: server.serviceUri,
    domain: o.domain,
    secret,
    command,
    protocol: 'generic',
    env: { LOG_LEVEL: 'info', ...o.env },
    probe: async () => server.componentLogins(o.domain) > loginsBefore,
  });
}

export { freePorts, LOOPBACK, randomSecret };
