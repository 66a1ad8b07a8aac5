// A throwaway ejabberd (23.01 or 24.12, whichever is asked for) for end-to-end tests: generated config in a temp dir, free loopback
// ports, the shim compiled by examples/ejabberd/build.sh (warnings are errors) or installed as an
// ejabberd-contrib module, run in the foreground as a plain (non-distributed) Erlang node -- so no
// epmd and no cookie -- unless ejabberdctl commands must reach it, and stopped with SIGTERM.
// KEEP_E2E_TMP=1 keeps the temp dir (ejabberd.yml, log/, the compiled shim) for inspection.
import { canConnect, freePorts, LOOPBACK, randomSecret } from './ports.js';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './component-process.js';
import { sleep } from './wait.js';
import { ServerChild } from './server-child.js';

const BUILD_SCRIPT = join(REPO_ROOT, 'examples/ejabberd/build.sh');
const START_TIMEOUT_MS = 30_000;
/** Short node names need a host part that resolves. */
export const NODE_HOST = 'localhost';
const STOP_GRACE_MS = 15_000;

/** Where unpacked server generations live (see .ci/run): one directory per Debian suite. */
export const TEST_SERVERS_DIR = process.env.EXTAUTH_TEST_SERVERS ?? '/opt/extauth-test-servers';

/** The ejabberd generations the project supports; with CI=true each must be present. */
export const SUPPORTED_EJABBERD = ['23.01', '24.12'] as const;

export interface EjabberdInstall {
  erl: string;
  /** e.g. /usr/lib/x86_64-linux-gnu/ejabberd-23.01-1 (holds ebin/ and include/). */
  libDir: string;
  /** e.g. `23.01` or `24.12`. */
  version: string;
  /** `ejabberd 24.12`: what test titles and reports name. */
  label: string;
  /**
   * ERL_LIBS for an unpacked generation: its own Erlang libraries (erlang-p1-xmpp, ...), found
   * before the system's. Undefined for the system-wide ejabberd.
   */
  erlLibs?: string | undefined;
}

/**
 * Every ejabberd on this machine, oldest first: the system-wide one(s) and those unpacked under
 * TEST_SERVERS_DIR (`<dir>/<suite>/usr/lib/<multiarch>/ejabberd-VERSION`), one per version.
 * EJABBERD_LIB_DIR names one explicitly instead.
 */
export function ejabberdInstalls(): EjabberdInstall[] {
  let erl: string;
  try {
    erl = execFileSync('sh', ['-c', 'command -v erl'], { encoding: 'utf8' }).trim();
  } catch {
    return [];
  }
  const candidates: { libDir: string; erlLibs?: string }[] = [];
  if (process.env.EJABBERD_LIB_DIR) {
    candidates.push({ libDir: process.env.EJABBERD_LIB_DIR });
  } else {
    for (const libDir of ejabberdLibDirs('/usr')) candidates.push({ libDir });
    for (const root of subdirs(TEST_SERVERS_DIR)) {
      for (const libDir of ejabberdLibDirs(join(root, 'usr'))) candidates.push({ libDir, erlLibs: join(root, 'usr/lib/erlang/lib') });
    }
  }
  const byVersion = new Map<string, EjabberdInstall>();
  for (const { libDir, erlLibs } of candidates) {
    if (!existsSync(join(libDir, 'ebin/ejabberd_auth.beam'))) continue;
    const version = ejabberdVersion(libDir);
    if (version && !byVersion.has(version)) byVersion.set(version, { erl, libDir: realpathSync(libDir), version, label: `ejabberd ${version}`, erlLibs });
  }
  return [...byVersion.values()].sort((a, b) => compareVersions(a.version, b.version));
}

/** ejabberd-VERSION directories under PREFIX/lib and PREFIX/lib/<multiarch>. */
function ejabberdLibDirs(prefix: string): string[] {
  const lib = join(prefix, 'lib');
  return [lib, ...subdirs(lib), join(prefix, 'local/lib')].flatMap((parent) =>
    subdirs(parent).filter((dir) => /^ejabberd-\d/.test(dir.slice(parent.length + 1))),
  );
}

/** The upstream part of the `vsn` in ebin/ejabberd.app (Debian's is e.g. `24.12-3~bpo12+1`): `24.12`. */
function ejabberdVersion(libDir: string): string | undefined {
  try {
    return /\{\s*vsn\s*,\s*"(\d+(?:\.\d+)*)/.exec(readFileSync(join(libDir, 'ebin/ejabberd.app'), 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** The ejabberd to use by default (the newest), or why there is none. */
export function findEjabberd(): EjabberdInstall | { missing: string } {
  const install = ejabberdInstalls().at(-1);
  if (install) return install;
  try {
    execFileSync('sh', ['-c', 'command -v erl'], { stdio: 'ignore' });
  } catch {
    return { missing: 'erl is not on PATH' };
  }
  return { missing: 'no ejabberd installation found (apt-get install ejabberd)' };
}

/**
 * The ejabberd generations to run the e2e tests against, and why some cannot run. Without
 * CI=true a missing generation is only reported (the caller skips); with CI=true it is an error.
 */
export function ejabberdTestTargets(): { installs: EjabberdInstall[]; missing: string | undefined } {
  const installs = ejabberdInstalls();
  const absent = SUPPORTED_EJABBERD.filter((generation) => !installs.some((i) => i.version === generation || i.version.startsWith(`${generation}.`)));
  const missing = absent.length === 0 ? undefined : `ejabberd ${absent.join(' and ')} not found (system-wide or in ${TEST_SERVERS_DIR}; .ci/run installs both)`;
  if (missing && process.env.CI === 'true') throw new Error(`ejabberd e2e tests cannot run in CI: ${missing}`);
  return { installs, missing };
}

/**
 * undefined when ejabberd can be used; else the reason to skip. With CI=true a missing ejabberd
 * generation is an error instead: the e2e suite must not silently pass without it.
 */
export function ejabberdSkipReason(): string | undefined {
  if (ejabberdTestTargets().installs.length > 0) return undefined;
  const install = findEjabberd();
  return 'missing' in install ? `ejabberd not available: ${install.missing}` : undefined;
}

export interface ServiceListener {
  /** Component domains this listener accepts, each with its password (`hosts:`). */
  hosts: Record<string, string>;
  checkFrom?: boolean;
}

export interface EjabberdOptions {
  vhost?: string;
  /** `external_component` (our shim, default), `external` (ejabberd's own extauth) or `mnesia`. */
  authMethod?: 'external_component' | 'external' | 'mnesia';
  /**
   * mod_auth_external_component options written to ejabberd.yml; `null` writes none (an installed
   * contrib package's conf/ file holds them).
   */
  shim?: { component?: string; timeout?: string | number; scram?: boolean } | null;
  /**
   * An ejabberd-contrib modules directory (CONTRIB_MODULES_PATH): the shim comes from the
   * packages installed there instead of build.sh.
   */
  contribModulesPath?: string;
  /** ejabberd's auth cache (auth_use_cache). Default off: every login asks the backend. */
  authCache?: boolean;
  /** A distributed node (short name, random cookie), so that `ctl` can reach it. */
  distributed?: boolean;
  /** With authMethod `external`: the program line ejabberd spawns. */
  extauthProgram?: string;
  /** ejabberd_service listener (default: auth.<vhost> with a random password). */
  service?: ServiceListener;
  /** Extra top-level YAML appended verbatim. */
  extraConfig?: string;
  label?: string;
  /** Which ejabberd to run. Default: the newest installed. */
  install?: EjabberdInstall;
}

export class EjabberdServer {
  private readonly process: ServerChild;

  private constructor(
    child: ChildProcess,
    readonly dir: string,
    readonly vhost: string,
    readonly c2sPort: number,
    readonly servicePort: number,
    readonly service: ServiceListener,
    /** The ejabberd this server runs. */
    readonly install: EjabberdInstall,
    /** With `distributed`: the node name and its cookie. */
    private readonly node?: { name: string; cookie: string },
  ) {
    this.process = new ServerChild(child);
  }

  get exited(): Promise<void> {
    return this.process.exited;
  }

  static async start(options: EjabberdOptions = {}): Promise<EjabberdServer> {
    const found = options.install ?? findEjabberd();
    if ('missing' in found) throw new Error(`ejabberd not available: ${found.missing}`);
    const install = found;
    const dir = mkdtempSync(join(tmpdir(), 'extauth-ejabberd-'));
    const ebin = join(dir, 'ebin');
    if (!options.contribModulesPath) {
      try {
        buildShim(install, ebin);
      } catch (error) {
        rmSync(dir, { recursive: true, force: true });
        throw error;
      }
    }
    const vhost = options.vhost ?? 'localhost';
    const service = options.service ?? { hosts: { [`auth.${vhost}`]: randomSecret() } };
    const [c2sPort, servicePort] = (await freePorts(2)) as [number, number];
    writeFileSync(join(dir, 'ejabberd.yml'), renderConfig({ ...options, vhost, service, c2sPort, servicePort }));
    const node = options.distributed
      ? { name: `extauth_e2e_${randomBytes(4).toString('hex')}@${NODE_HOST}`, cookie: `c${randomBytes(12).toString('hex')}` }
      : undefined;
    const child = spawnEjabberdNode(install, dir, {
      node,
      codePaths: options.contribModulesPath ? [] : [ebin],
      env: options.contribModulesPath ? { CONTRIB_MODULES_PATH: options.contribModulesPath } : {},
    });
    const server = new EjabberdServer(child, dir, vhost, c2sPort!, servicePort!, service, install, node);
    try {
      await server.waitListening(START_TIMEOUT_MS, `${options.label ?? 'ejabberd'} (${install.label})`);
    } catch (error) {
      await server.stop({ keepDir: true });
      throw error;
    }
    return server;
  }

  get host(): string {
    return LOOPBACK;
  }

  /** `xmpp://127.0.0.1:PORT` for XMPP_SERVICE. */
  get serviceUri(): string {
    return `xmpp://${LOOPBACK}:${this.servicePort}`;
  }

  /**
   * Runs an ejabberdctl command against this node (needs `distributed`), the way the ejabberdctl
   * script does: a hidden node running ejabberd_ctl with the command line. Returns its exit status
   * and output.
   */
  ctl(...args: string[]): { status: number; output: string } {
    if (!this.node) throw new Error('ctl needs a server started with distributed: true');
    const control = `extauth_ctl_${randomBytes(3).toString('hex')}@${NODE_HOST}`;
    const result = spawnSync(
      this.install.erl,
      [
        '-sname',
        control,
        '-setcookie',
        this.node.cookie,
        '-hidden',
        '-noinput',
        '-pa',
        join(this.install.libDir, 'ebin'),
        '-s',
        'ejabberd_ctl',
        '-extra',
        this.node.name,
        ...args,
      ],
      { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: this.dir, ...erlLibsEnv(this.install) }, timeout: 120_000 },
    );
    return { status: result.status ?? -1, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
  }

  /** ejabberd's log (console output: info and above). */
  log(): string {
    const file = join(this.dir, 'log/ejabberd.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : this.process.output;
  }

  /** Waits until the log (from `from` on) contains the text. */
  async waitForLog(text: string | RegExp, timeoutMs: number, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = this.log().slice(from);
      if (typeof text === 'string' ? log.includes(text) : text.test(log)) return;
      if (Date.now() > deadline) throw new Error(`ejabberd log has no ${String(text)} after ${timeoutMs} ms\n${tail(log, 30)}`);
      await sleep(100);
    }
  }

  /** SIGTERM (the VM stops its applications), SIGKILL after a grace period; removes the temp dir. */
  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    await this.process.stop(STOP_GRACE_MS);
    if (!options.keepDir && !process.env.KEEP_E2E_TMP) rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitListening(timeoutMs: number, label: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.process.running)
        throw new Error(`${label} exited (code ${this.process.exitCode}) while starting; config and logs in ${this.dir}\n${tail(this.process.output, 40)}`);
      if ((await canConnect(this.c2sPort)) && (await canConnect(this.servicePort))) return;
      if (Date.now() > deadline)
        throw new Error(`${label} is not listening after ${timeoutMs} ms; config and logs in ${this.dir}\n${tail(this.process.output, 40)}`);
      await sleep(100);
    }
  }
}

function renderConfig(o: EjabberdOptions & { vhost: string; service: ServiceListener; c2sPort: number; servicePort: number }): string {
  const method = o.authMethod ?? 'external_component';
  const hosts = Object.entries(o.service.hosts)
    .map(([domain, password]) => `      ${yaml(domain)}:\n        password: ${yaml(password)}`)
    .join('\n');
  const lines = [
    'hosts:',
    `  - ${yaml(o.vhost)}`,
    'loglevel: info',
    'hide_sensitive_log_data: true',
    'listen:',
    '  -',
    `    port: ${o.c2sPort}`,
    `    ip: "${LOOPBACK}"`,
    '    module: ejabberd_c2s',
    '    starttls: false',
    '    backlog: 1024', // the default (5) makes concurrent connects wait for SYN retries
    '  -',
    `    port: ${o.servicePort}`,
    `    ip: "${LOOPBACK}"`,
    '    module: ejabberd_service',
    `    check_from: ${o.service.checkFrom ?? true}`,
    '    hosts:',
    hosts,
    `auth_method: [${method}]`,
    // By default every login asks the backend: the tests count requests and stop the component.
    `auth_use_cache: ${o.authCache ?? false}`,
    's2s_access: none',
    'registration_timeout: infinity',
    'acl:',
    '  local:',
    '    user_regexp: ""',
    'access_rules:',
    '  local:',
    '    allow: local',
    '  c2s:',
    '    allow: all',
    'modules:',
    '  mod_register:',
    '    access: all',
    '    access_from: all',
    '    access_remove: all',
    '    password_strength: 0',
  ];
  if (method === 'external_component') {
    if (o.shim !== null) {
      lines.push('  mod_auth_external_component:');
      lines.push(`    component: ${yaml(o.shim?.component ?? Object.keys(o.service.hosts)[0]!)}`);
      lines.push(`    timeout: ${yaml(String(o.shim?.timeout ?? 5))}`);
      if (o.shim?.scram !== undefined) lines.push(`    scram: ${o.shim.scram}`);
    }
  } else if (method === 'external') {
    if (!o.extauthProgram) throw new Error('authMethod external needs extauthProgram');
    lines.push(`extauth_program: ${yaml(o.extauthProgram)}`);
    lines.push('extauth_pool_size: 1');
  }
  if (o.extraConfig) lines.push(o.extraConfig);
  return `${lines.join('\n')}\n`;
}

/**
 * Compiles the shim with examples/ejabberd/build.sh into `ebin`, warnings as errors (what
 * ejabberd's own compiler would only warn about must not ship).
 */
export function buildShim(install: EjabberdInstall, ebin: string): void {
  try {
    execFileSync('sh', [BUILD_SCRIPT, ebin], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, EJABBERD_LIB_DIR: install.libDir, ERLC_FLAGS: '+warnings_as_errors', ...erlLibsEnv(install) },
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`building the ejabberd shim failed (${install.label}): ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** A YAML double-quoted scalar. */
function yaml(value: string): string {
  return JSON.stringify(value);
}

export interface EjabberdNodeOptions {
  /** A distributed node: its short name and cookie. */
  readonly node?: { readonly name: string; readonly cookie: string } | undefined;
  /** Code paths searched before ejabberd's own (the shim's compiled module). */
  readonly codePaths?: readonly string[];
  /** Added to the node's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Starts one ejabberd node in `dir`, everything it writes kept there: its config
 * (`dir/ejabberd.yml`), Mnesia database, log, crash dump and home, with the generation's own
 * Erlang libraries. Output is piped for the caller to read.
 */
export function spawnEjabberdNode(install: EjabberdInstall, dir: string, options: EjabberdNodeOptions = {}): ChildProcess {
  const args = [
    ...(options.node ? ['-sname', options.node.name, '-setcookie', options.node.cookie] : []),
    '-noinput',
    ...(options.codePaths ?? []).flatMap((path) => ['-pa', path]),
    '-pa',
    join(install.libDir, 'ebin'),
    '-mnesia',
    'dir',
    JSON.stringify(join(dir, 'db')),
    '-s',
    'ejabberd',
  ];
  return spawn(install.erl, args, {
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      LANG: 'C.UTF-8',
      EJABBERD_CONFIG_PATH: join(dir, 'ejabberd.yml'),
      EJABBERD_LOG_PATH: join(dir, 'log/ejabberd.log'),
      ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
      ...erlLibsEnv(install),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * The environment an `erl` running this ejabberd needs: for an unpacked generation, ERL_LIBS
 * naming its own Erlang libraries ahead of any inherited value; nothing for the system-wide one.
 */
export function erlLibsEnv(install: EjabberdInstall): Record<string, string> {
  if (!install.erlLibs) return {};
  return { ERL_LIBS: [install.erlLibs, process.env.ERL_LIBS].filter(Boolean).join(':') };
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(dir, entry.name));
  } catch {
    return [];
  }
}

function compareVersions(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

export function startEjabberd(options?: EjabberdOptions): Promise<EjabberdServer> {
  return EjabberdServer.start(options);
}

export { freePorts, LOOPBACK, randomSecret };
