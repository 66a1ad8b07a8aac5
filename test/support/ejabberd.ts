// A throwaway ejabberd for end-to-end tests: generated config in a temp dir, free loopback
// ports, the shim compiled by examples/ejabberd/build.sh, run in the foreground as a plain
// (non-distributed) Erlang node -- so no epmd and no cookie -- and stopped with SIGTERM.
// KEEP_E2E_TMP=1 keeps the temp dir (ejabberd.yml, log/, the compiled shim) for inspection.
import { canConnect, freePorts, LOOPBACK, randomSecret } from './ports.js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, sleep } from './component.js';

const BUILD_SCRIPT = join(REPO_ROOT, 'examples/ejabberd/build.sh');
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 15_000;

export interface EjabberdInstall {
  erl: string;
  /** e.g. /usr/lib/x86_64-linux-gnu/ejabberd-23.01-1 (holds ebin/ and include/). */
  libDir: string;
}

/** Where ejabberd and erl are, or why they can't be used. EJABBERD_LIB_DIR overrides the lookup. */
export function findEjabberd(): EjabberdInstall | { missing: string } {
  let erl: string;
  try {
    erl = execFileSync('sh', ['-c', 'command -v erl'], { encoding: 'utf8' }).trim();
  } catch {
    return { missing: 'erl is not on PATH' };
  }
  const candidates: string[] = [];
  if (process.env.EJABBERD_LIB_DIR) candidates.push(process.env.EJABBERD_LIB_DIR);
  for (const parent of ['/usr/lib', ...subdirs('/usr/lib'), '/usr/local/lib']) {
    for (const name of subdirs(parent)) if (/^ejabberd-\d/.test(name.slice(parent.length + 1))) candidates.push(name);
  }
  const found = candidates.filter((dir) => existsSync(join(dir, 'ebin/ejabberd_auth.beam'))).sort(compareVersions);
  const libDir = process.env.EJABBERD_LIB_DIR ?? found.at(-1);
  if (!libDir || !existsSync(join(libDir, 'ebin/ejabberd_auth.beam'))) return { missing: 'no ejabberd installation found (apt-get install ejabberd)' };
  return { erl, libDir };
}

/**
 * undefined when ejabberd can be used; else the reason to skip. With CI=true a missing ejabberd
 * is an error instead: the e2e suite must not silently pass without it.
 */
export function ejabberdSkipReason(): string | undefined {
  const install = findEjabberd();
  if (!('missing' in install)) return undefined;
  if (process.env.CI === 'true') throw new Error(`ejabberd e2e tests cannot run in CI: ${install.missing}`);
  return `ejabberd not available: ${install.missing}`;
}

export interface ServiceListener {
  /** Component domains this listener accepts, each with its password (`hosts:`). */
  hosts: Record<string, string>;
  checkFrom?: boolean;
}

export interface EjabberdOptions {
  vhost?: string;
  /** `external_component` (our shim, default) or `external` (ejabberd's own extauth). */
  authMethod?: 'external_component' | 'external';
  /** mod_auth_external_component options. */
  shim?: { component?: string; timeout?: string | number };
  /** With authMethod `external`: the program line ejabberd spawns. */
  extauthProgram?: string;
  /** ejabberd_service listener (default: auth.<vhost> with a random password). */
  service?: ServiceListener;
  /** Extra top-level YAML appended verbatim. */
  extraConfig?: string;
  label?: string;
}

export class EjabberdServer {
  private output = '';
  private exitCode: number | null | undefined = undefined;
  private readonly killOnExit = () => this.child.kill('SIGKILL');
  readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly vhost: string,
    readonly c2sPort: number,
    readonly servicePort: number,
    readonly service: ServiceListener,
  ) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolveExit) =>
      child.on('exit', (code) => {
        this.exitCode = code;
        process.off('exit', this.killOnExit);
        resolveExit();
      }),
    );
    process.once('exit', this.killOnExit);
  }

  static async start(options: EjabberdOptions = {}): Promise<EjabberdServer> {
    const install = findEjabberd();
    if ('missing' in install) throw new Error(`ejabberd not available: ${install.missing}`);
    const dir = mkdtempSync(join(tmpdir(), 'extauth-ejabberd-'));
    const ebin = join(dir, 'ebin');
    try {
      execFileSync('sh', [BUILD_SCRIPT, ebin], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, EJABBERD_LIB_DIR: install.libDir } });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`building the ejabberd shim failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
    const vhost = options.vhost ?? 'localhost';
    const service = options.service ?? { hosts: { [`auth.${vhost}`]: randomSecret() } };
    const [c2sPort, servicePort] = await freePorts(2);
    writeFileSync(join(dir, 'ejabberd.yml'), renderConfig({ ...options, vhost, service, c2sPort, servicePort }));
    const child = spawn(
      install.erl,
      ['-noinput', '-pa', ebin, '-pa', join(install.libDir, 'ebin'), '-mnesia', 'dir', JSON.stringify(join(dir, 'db')), '-s', 'ejabberd'],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          LANG: 'C.UTF-8',
          EJABBERD_CONFIG_PATH: join(dir, 'ejabberd.yml'),
          EJABBERD_LOG_PATH: join(dir, 'log/ejabberd.log'),
          ERL_CRASH_DUMP: join(dir, 'erl_crash.dump'),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const server = new EjabberdServer(child, dir, vhost, c2sPort!, servicePort!, service);
    try {
      await server.waitListening(START_TIMEOUT_MS, options.label ?? 'ejabberd');
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

  /** ejabberd's log (console output: info and above). */
  log(): string {
    const file = join(this.dir, 'log/ejabberd.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : this.output;
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
    if (this.exitCode === undefined) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    if (!options.keepDir && !process.env.KEEP_E2E_TMP) rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitListening(timeoutMs: number, label: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exitCode !== undefined) throw new Error(`${label} exited (code ${this.exitCode}) while starting; config and logs in ${this.dir}\n${tail(this.output, 40)}`);
      if ((await canConnect(this.c2sPort)) && (await canConnect(this.servicePort))) return;
      if (Date.now() > deadline) throw new Error(`${label} is not listening after ${timeoutMs} ms; config and logs in ${this.dir}\n${tail(this.output, 40)}`);
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
    // Every login asks the backend: the tests count requests and stop the component.
    'auth_use_cache: false',
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
    lines.push('  mod_auth_external_component:');
    lines.push(`    component: ${yaml(o.shim?.component ?? Object.keys(o.service.hosts)[0]!)}`);
    lines.push(`    timeout: ${yaml(String(o.shim?.timeout ?? 5))}`);
  } else {
    if (!o.extauthProgram) throw new Error('authMethod external needs extauthProgram');
    lines.push(`extauth_program: ${yaml(o.extauthProgram)}`);
    lines.push('extauth_pool_size: 1');
  }
  if (o.extraConfig) lines.push(o.extraConfig);
  return `${lines.join('\n')}\n`;
}

/** A YAML double-quoted scalar. */
function yaml(value: string): string {
  return JSON.stringify(value);
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
