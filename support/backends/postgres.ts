// A throwaway PostgreSQL cluster for the backend tests and the benchmark: initdb into a temp
// dir, pg_ctl start on a free loopback port, password (SCRAM) authentication, stopped and removed
// at the end. PostgreSQL refuses to run as root: when the tests run as root, the cluster runs as
// the `postgres` system user (created by Debian's postgresql package) through setpriv.
import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { freePorts } from '../ports.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BACKENDS = path.join(ROOT, 'examples/backends');
export const AUTH_SQL = path.join(BACKENDS, 'sql/auth-sql');
export const AUTH_HTTP = path.join(BACKENDS, 'http/auth-http');

/** Loads a package from examples/backends/node_modules (never a dependency of the component). */
export const backendRequire = createRequire(path.join(BACKENDS, 'package.json'));

export interface QueryResult {
  rows: Array<Record<string, unknown>>;
  rowCount: number | null;
}
export interface SqlClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<QueryResult>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): void;
}
interface PgModule {
  Client: new (config: { connectionString: string }) => SqlClient;
}

/** The directory holding initdb and pg_ctl: Debian's newest /usr/lib/postgresql/N/bin, or pg_config's. */
export function findPostgresBin(): string | undefined {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(path.join(debian, v, 'bin/initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(debian, versions[0], 'bin');
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (existsSync(path.join(dir, 'initdb'))) return dir;
  } catch {
    // not installed
  }
  return undefined;
}

/** Undefined when the backend tests can run; else why not. With CI=true a missing part is an error. */
export function backendSkipReason(): string | undefined {
  const missing: string[] = [];
  if (!findPostgresBin()) missing.push('PostgreSQL (apt-get install postgresql)');
  if (!existsSync(path.join(BACKENDS, 'node_modules/pg'))) missing.push("the backends' packages (examples/backends/install.sh)");
  if (process.getuid?.() === 0 && !hasUser('postgres')) missing.push('a postgres system user to run the database as');
  if (missing.length === 0) return undefined;
  const reason = `missing ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`backend tests cannot run in CI: ${reason}`);
  return reason;
}

function hasUser(name: string): boolean {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export class PostgresCluster {
  /** Should the test process end without destroy() (a crash, an interrupted run): no server left behind. */
  private readonly stopOnExit = () => {
    try {
      this.run('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  };

  private constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
    private readonly superPassword: string,
  ) {}

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  /** A postgres:// URL for a role of this cluster. */
  url(role = 'postgres', password = this.superPassword, database = 'app'): string {
    return `postgres://${encodeURIComponent(role)}:${encodeURIComponent(password)}@127.0.0.1:${this.port}/${database}`;
  }

  static async start(): Promise<PostgresCluster> {
    const bin = findPostgresBin();
    if (!bin) throw new Error('PostgreSQL is not installed');
    const dir = mkdtempSync(path.join(tmpdir(), 'extauth-pg-'));
    const [port] = await freePorts(1);
    const superPassword = randomBytes(12).toString('hex');
    const cluster = new PostgresCluster(bin, dir, port!, superPassword);
    writeFileSync(path.join(dir, 'pwfile'), `${superPassword}\n`);
    if (process.getuid?.() === 0) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
      chownSync(dir, uid, gid);
      chownSync(path.join(dir, 'pwfile'), uid, gid);
    }
    process.once('exit', cluster.stopOnExit);
    cluster.run('initdb', [
      '-D',
      cluster.dataDir,
      '-U',
      'postgres',
      '--pwfile',
      path.join(dir, 'pwfile'),
      '--auth',
      'scram-sha-256',
      '-E',
      'UTF8',
      '--locale',
      'C.UTF-8',
      '--no-sync',
    ]);
    await cluster.startServer();
    const admin = await cluster.client(cluster.url('postgres', superPassword, 'postgres'));
    await admin.query('CREATE DATABASE app');
    await admin.end();
    return cluster;
  }

  private run(tool: string, args: string[], options: ExecFileSyncOptions = {}): void {
    const command = path.join(this.bin, tool);
    const asPostgres = process.getuid?.() === 0;
    const file = asPostgres ? 'setpriv' : command;
    const argv = asPostgres ? ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', command, ...args] : args;
    try {
      execFileSync(file, argv, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, ...options });
    } catch (error) {
      const e = error as { stderr?: Buffer; stdout?: Buffer };
      throw new Error(`${tool} failed: ${e.stderr?.toString() ?? ''}${e.stdout?.toString() ?? ''}${this.logTail()}`);
    }
  }

  logTail(): string {
    const log = path.join(this.dir, 'postgres.log');
    return existsSync(log) ? `\n--- postgres log ---\n${readFileSync(log, 'utf8').split('\n').slice(-20).join('\n')}` : '';
  }

  /** Starts the server and waits until it accepts connections (pg_ctl -w). */
  async startServer(): Promise<void> {
    const options = `-c listen_addresses=127.0.0.1 -p ${this.port} -c unix_socket_directories=${this.dir} -c fsync=off -c max_connections=200`;
    this.run('pg_ctl', ['-D', this.dataDir, '-l', path.join(this.dir, 'postgres.log'), '-o', options, '-w', '-t', '60', 'start']);
  }

  /** Stops the server at once (fast shutdown: open connections are terminated). */
  async stopServer(): Promise<void> {
    this.run('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
  }

  /** A connected client (the `pg` package the backends use). */
  async client(url = this.url()): Promise<SqlClient> {
    const pg = backendRequire('pg') as PgModule;
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  /** Runs SQL as the superuser on the app database. */
  async sql(text: string, values?: unknown[]): Promise<QueryResult> {
    const client = await this.client();
    try {
      return await client.query(text, values);
    } finally {
      await client.end();
    }
  }

  async destroy(): Promise<void> {
    process.off('exit', this.stopOnExit);
    try {
      if (existsSync(path.join(this.dataDir, 'postmaster.pid'))) await this.stopServer();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
