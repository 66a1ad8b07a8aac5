// npx tsx bench/backend-prosody.ts [--logins=N] [--rounds=R] [--processes=1,4] [--write]
//
// Logins per second through Prosody (the newest installed, or EXTAUTH_BENCH_PROSODY=0.12 / 13)
// from a PostgreSQL table: the shim asks the component, the component asks
// examples/backends/sql/auth-sql. One auth-sql process in tagged (requests pipelined to it, a
// pool of 8 connections) against the same script in generic lockstep x N processes (one request
// per process, one connection each); the database round trip, without Prosody or the component,
// is the baseline. Twice: the database on this machine, and 10 ms away (each row read waits
// 10 ms in the database, as it would on the network), where lockstep waits and tagged overlaps.
//
// Every case gets a fresh Prosody and component; the login load (bench/login-load.ts: 32 client
// connections, users u0..u63 with password pw-uK, bcrypt cost 4 rows) runs in a process of its
// own. The cases are measured in rounds, the second in reverse order, so that a change in the
// machine's load during the run weighs on every case alike. The machine may be shared: compare
// the figures within one run (the ratios), not across runs. Prints its table; --write puts it
// into BENCHMARKS.md (section "backends", which `npm run bench` keeps). Under two minutes.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createUsersTable, type Account } from '../support/backends/accounts.js';
import { AUTH_SQL, backendRequire, backendSkipReason, PostgresCluster } from '../support/backends/postgres.js';
import { ProsodyServer, startComponentFor, type ProsodyInstall } from '../support/prosody.js';
import { REPO_ROOT_FROM_BENCH } from './child.js';
import { replaceSection } from './kept-sections.js';
import { measureLogins, type LoginBenchResult } from './login-bench.js';
import { QUICK, type BenchMode } from './mode.js';
import { cpuTimeMs, findPid } from './proc-stats.js';
import { Progress } from './progress.js';
import { benchProsody, switchToInternalPlain } from './prosody-bench.js';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const LOGINS = Number(args.get('logins') ?? 300);
const ROUNDS = Number(args.get('rounds') ?? 2);
const PROCESSES = (args.get('processes') ?? '1,4').split(',').map(Number);
const WRITE = args.has('write');
const USERS = 64; // what bench/login-load.ts logs in as
const BCRYPT_COST = 4;
const REMOTE_MS = 10;
const BASELINE_SECONDS = 2;

const MODE: BenchMode = { ...QUICK, runs: 1, loginsPerRun: LOGINS, warmupLogins: 60, loginConnections: 32 };

interface Case {
  /** `none`: Prosody's own internal_plain, the ceiling for any backend. */
  database: 'local' | 'remote' | 'none';
  label: string;
  env: Record<string, string>;
  /** The lockstep process count (tagged: 1). */
  processes: number;
  tagged: boolean;
}

interface Row {
  kase: Case;
  result: LoginBenchResult;
  /** CPU milliseconds per login (warm-up and runs) of the script processes, and of the component. */
  scriptMsPerLogin: number;
  componentMsPerLogin: number;
}

interface Baseline {
  label: string;
  perSecond: number;
  msEach: number;
}

interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

function cases(): Case[] {
  const list: Case[] = [{ database: 'none', label: "Prosody's internal_plain", env: {}, processes: 0, tagged: false }];
  for (const database of ['local', 'remote'] as const) {
    const table: Record<string, string> = database === 'remote' ? { AUTH_SQL_TABLE: 'remote_users' } : {};
    list.push({
      database,
      label: 'auth-sql tagged ×1',
      env: { EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', ...table },
      processes: 1,
      tagged: true,
    });
    for (const n of PROCESSES) {
      list.push({
        database,
        label: `auth-sql generic lockstep ×${n}`,
        env: { EXTERNAL_AUTH_PROTOCOL: 'generic', EXTERNAL_AUTH_BLOCKING: 'true', EXTERNAL_AUTH_PROCESSES: String(n), ...table },
        processes: n,
        tagged: false,
      });
    }
  }
  return list;
}

/** Queries per second from `workers` loops over `once`, for `seconds`. */
async function closedLoop(workers: number, seconds: number, once: (i: number) => Promise<unknown>): Promise<number> {
  const started = Date.now();
  const end = started + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = w; Date.now() < end; i += workers) {
        await once(i);
        done++;
      }
    }),
  );
  return done / ((Date.now() - started) / 1000);
}

/** The query auth-sql runs for a login, straight from `pg`: one connection in lockstep, and a pool of 8 with 32 in flight. */
async function baselines(cluster: PostgresCluster, table: string, where: string): Promise<Baseline[]> {
  const pg = backendRequire('pg') as { Pool: new (o: { connectionString: string; max: number }) => Queryable };
  const text = `SELECT password_hash AS hash FROM ${table} WHERE username = $1 LIMIT 2`;
  const rows: Baseline[] = [];
  for (const [connections, inFlight] of [
    [1, 1],
    [8, 32],
  ] as const) {
    const pool = new pg.Pool({ connectionString: cluster.url(), max: connections });
    try {
      await pool.query(text, ['u0']);
      const perSecond = await closedLoop(inFlight, BASELINE_SECONDS, (i) => pool.query(text, [`u${i % USERS}`]));
      const label =
        connections === 1
          ? `PostgreSQL round trip, ${where}, 1 connection, lockstep`
          : `PostgreSQL round trip, ${where}, pool of ${connections}, ${inFlight} in flight`;
      rows.push({ label, perSecond, msEach: (1000 * inFlight) / perSecond });
    } finally {
      await pool.end();
    }
  }
  return rows;
}

/** The component's children: its script processes. */
function childPids(pid: number): number[] {
  const pids: number[] = [];
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    const children = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (children) pids.push(...children.split(/\s+/).map(Number));
  }
  return pids;
}

/** CPU milliseconds so far of the component and of its script processes. */
function cpuOf(componentPid: number): { component: number; scripts: Map<number, number> } {
  return { component: cpuTimeMs(componentPid), scripts: new Map(childPids(componentPid).map((pid) => [pid, cpuTimeMs(pid)])) };
}

async function throughProsody(install: ProsodyInstall, cluster: PostgresCluster, kase: Case, progress: Progress): Promise<Row> {
  const server = await ProsodyServer.start({ install, logLevel: 'warn', label: 'bench prosody' });
  try {
    if (kase.database === 'none') {
      await switchToInternalPlain(server);
      const result = await measureLogins({
        label: `${install.label}: ${kase.label}`,
        target: { host: server.host, port: server.c2sPort, domain: server.vhost },
        mode: MODE,
        progress,
        serverPid: findPid(server.dir),
      });
      return { kase, result, scriptMsPerLogin: Number.NaN, componentMsPerLogin: Number.NaN };
    }
    const component = await startComponentFor(server, {
      domain: Object.keys(server.components)[0]!,
      command: AUTH_SQL,
      env: { ...kase.env, EXTERNAL_AUTH_TIMEOUT: '10', AUTH_DATABASE_URL: cluster.url() },
      label: 'bench component',
    });
    try {
      const label = `${install.label}: ${kase.label}, database ${kase.database === 'local' ? 'local' : `${REMOTE_MS} ms away`}`;
      const pid = component.pid!;
      for (let waited = 0; childPids(pid).length < kase.processes && waited < 10_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
      const before = cpuOf(pid);
      if (before.scripts.size !== kase.processes) throw new Error(`${label}: ${before.scripts.size} script processes, expected ${kase.processes}`);
      const result = await measureLogins({
        label,
        target: { host: server.host, port: server.c2sPort, domain: server.vhost },
        mode: MODE,
        progress,
        serverPid: findPid(server.dir),
        componentPid: pid,
      });
      const after = cpuOf(pid);
      const logins = MODE.warmupLogins + result.runs.reduce((sum, run) => sum + run.login.logins, 0);
      // A script process restarted meanwhile would count from zero; none is expected (every login succeeds).
      let scriptMs = 0;
      for (const [scriptPid, ms] of after.scripts) scriptMs += ms - (before.scripts.get(scriptPid) ?? 0);
      return { kase, result, scriptMsPerLogin: scriptMs / logins, componentMsPerLogin: (after.component - before.component) / logins };
    } finally {
      await component.stop();
    }
  } finally {
    await server.stop();
  }
}

function render(install: ProsodyInstall, rows: Row[], base: Baseline[], started: Date, seconds: number, loadBefore: string): string {
  const cpu = cpus();
  const out: string[] = [];
  out.push('## Backends', '');
  out.push(
    `Logins per second through ${install.label} from a PostgreSQL table: Prosody's shim asks the component, the component asks \`examples/backends/sql/auth-sql\`, which reads the row and checks a bcrypt (cost ${BCRYPT_COST}) hash. ` +
      `One process in \`tagged\` (requests pipelined to it, its pool of 8 database connections) against the same script in \`generic\` lockstep × N processes (one request per process at a time, one connection each). ` +
      `32 client connections; each case measured ${ROUNDS} times (${LOGINS} logins after ${MODE.warmupLogins} of warm-up, a fresh Prosody and component each time), the rounds in alternating order; logins/s is their mean, with each round's figure after it. ` +
      `"10 ms away": every row read waits ${REMOTE_MS} ms in the database (a view over a function with \`pg_sleep\`), as a database across a network would.`,
    '',
    `Measured ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, Node ${process.version}, load average ${loadBefore} at the start and ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end (${Math.round(seconds)} s; \`npx tsx bench/backend-prosody.ts\`). ` +
      'The machine was shared with other work: compare within the table (the ratios), not with other runs.',
    '',
  );
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const ceiling = rows.filter((r) => r.kase.database === 'none').map((r) => r.result.summary.rate);
  if (ceiling.length > 0) {
    out.push(
      `The ceiling, the same Prosody checking passwords itself (\`internal_plain\`, no component, no database): **${mean(ceiling).toFixed(0)}** logins/s (${ceiling.map((r) => r.toFixed(0)).join(', ')}).`,
      '',
    );
  }
  for (const database of ['local', 'remote'] as const) {
    const kinds = cases().filter((k) => k.database === database);
    const of = (k: Case) => rows.filter((r) => r.kase.label === k.label && r.kase.database === database);
    const lockstep1 = kinds.find((k) => !k.tagged && k.processes === 1);
    const baseRate = lockstep1 ? mean(of(lockstep1).map((r) => r.result.summary.rate)) : Number.NaN;
    out.push(`Database ${database === 'local' ? 'on this machine' : `${REMOTE_MS} ms away`}:`, '');
    out.push(
      '| through Prosody | logins/s (rounds) | × lockstep ×1 | p50 ms | p99 ms | script CPU ms/login | component CPU ms/login | failed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
    for (const kase of kinds) {
      const own = of(kase);
      const rates = own.map((r) => r.result.summary.rate);
      const failed = own.reduce((sum, r) => sum + Object.values(r.result.summary.failures).reduce((a, b) => a + b, 0), 0);
      const ratio = Number.isFinite(baseRate) ? (mean(rates) / baseRate).toFixed(2) : '–';
      out.push(
        `| ${kase.label} | ${mean(rates).toFixed(0)} (${rates.map((r) => r.toFixed(0)).join(', ')}) | ${ratio} | ${mean(own.map((r) => r.result.summary.p50Ms)).toFixed(0)} | ${mean(own.map((r) => r.result.summary.p99Ms)).toFixed(0)} | ` +
          `${mean(own.map((r) => r.scriptMsPerLogin)).toFixed(2)} | ${mean(own.map((r) => r.componentMsPerLogin)).toFixed(2)} | ${failed} |`,
      );
    }
    out.push('');
  }
  // The ratios in words: what the tables are for.
  const rateOf = (database: string, pick: (k: Case) => boolean) => {
    const own = rows.filter((r) => r.kase.database === database && pick(r.kase));
    return own.length ? { rate: mean(own.map((r) => r.result.summary.rate)), cpu: mean(own.map((r) => r.scriptMsPerLogin)) } : undefined;
  };
  const widest = Math.max(...PROCESSES);
  const summary: string[] = [];
  for (const database of ['local', 'remote'] as const) {
    const tagged = rateOf(database, (k) => k.tagged);
    const one = rateOf(database, (k) => !k.tagged && k.processes === 1);
    const many = rateOf(database, (k) => !k.tagged && k.processes === widest);
    if (!tagged || !one || !many) continue;
    summary.push(
      `database ${database === 'local' ? 'on this machine' : `${REMOTE_MS} ms away`}: tagged ×1 = ${(tagged.rate / one.rate).toFixed(2)}× lockstep ×1 and ${(tagged.rate / many.rate).toFixed(2)}× lockstep ×${widest} in logins/s, ` +
        `at ${(tagged.cpu / many.cpu).toFixed(2)}× the script CPU per login of lockstep ×${widest}`,
    );
  }
  if (summary.length) out.push(`In ratios: ${summary.join('; ')}.`, '');
  out.push(
    'How to read it: with the database on this machine, a login costs the script about a millisecond of hashing and well under one of database, so the script is not what bounds logins (Prosody and the shared CPU are) and the protocol matters little: compare a difference with the spread between rounds before reading anything into it. ' +
      `With the database ${REMOTE_MS} ms away, one lockstep process can do at most 1 ÷ round trip logins per second; one \`tagged\` process keeps its pool's queries travelling at once, as N lockstep processes do with N connections, at less script CPU per login (one process, fewer wake-ups).`,
    '',
  );
  out.push('The baseline, the query `auth-sql` runs for a login, from `pg` in the benchmark process (no Prosody, no component, no hashing):', '');
  out.push('| database round trip | queries/s | ms each |', '|---|---:|---:|');
  for (const b of base) out.push(`| ${b.label} | ${b.perSecond.toFixed(0)} | ${b.msEach.toFixed(2)} |`);
  out.push('');
  return out.join('\n');
}

async function main(): Promise<void> {
  const skip = backendSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  const install = benchProsody();
  if (!install) throw new Error(`no Prosody ${process.env.EXTAUTH_BENCH_PROSODY ?? ''} installed`);
  const started = new Date();
  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  const progress = new Progress();
  const cluster = await PostgresCluster.start();
  const rows: Row[] = [];
  let base: Baseline[] = [];
  try {
    const bcrypt = backendRequire('@node-rs/bcrypt') as { hash(p: string, cost: number): Promise<string> };
    const accounts: Account[] = await Promise.all(
      Array.from({ length: USERS }, async (_, k) => ({
        user: `u${k}`,
        password: `pw-u${k}`,
        hash: await bcrypt.hash(`pw-u${k}`, BCRYPT_COST),
        scheme: 'bcrypt',
        prefix: '',
      })),
    );
    await createUsersTable(cluster, accounts);
    await cluster.sql(
      `CREATE FUNCTION after_${REMOTE_MS}ms(value text) RETURNS text LANGUAGE sql VOLATILE AS 'SELECT pg_sleep(${REMOTE_MS / 1000}); SELECT value'`,
    );
    await cluster.sql(`CREATE VIEW remote_users AS SELECT username, after_${REMOTE_MS}ms(password_hash) AS password_hash FROM users`);
    progress.scenarioStart('database round trip');
    base = [...(await baselines(cluster, 'users', 'local')), ...(await baselines(cluster, 'remote_users', `${REMOTE_MS} ms away`))];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? cases() : cases().reverse();
      for (const kase of order) rows.push(await throughProsody(install, cluster, kase, progress));
    }
  } finally {
    await cluster.destroy();
  }
  progress.endLine();
  const section = render(install, rows, base, started, (Date.now() - started.getTime()) / 1000, loadBefore);
  process.stdout.write(`\n${section}`);
  if (WRITE) {
    const file = join(REPO_ROOT_FROM_BENCH, 'BENCHMARKS.md');
    writeFileSync(file, replaceSection(readFileSync(file, 'utf8'), 'backends', section));
    progress.note('wrote the "backends" section of BENCHMARKS.md');
  }
}

process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
