// npx tsx bench/backend-sql.ts [--seconds=S] [--cost=C]
//
// Logins per second through examples/backends/sql/auth-sql, driven directly over its stdin and
// stdout (no component, no XMPP server): one process speaking tagged with many requests in flight
// against the same script in generic lockstep x N processes, and the raw PostgreSQL round trip as
// the baseline. A throwaway cluster is started and removed (see support/backends/postgres.ts).
// Every login is checked (right password -> 1); the run takes under a minute. Also a database
// 10 ms away, where lockstep waits and tagged keeps a pool of queries in flight.
import { cpus } from 'node:os';
import { createUsersTable, type Account } from '../../support/backends/accounts.js';
import { AUTH_SQL, backendRequire, backendSkipReason, PostgresCluster, type SqlClient } from '../../support/backends/postgres.js';
import { ScriptClient, type Protocol } from '../../support/backends/script-client.js';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const SECONDS = Number(args.get('seconds') ?? 2);
const COSTS = (args.get('cost') ?? '4,10').split(',').map(Number);
const USERS = 200;
const IN_FLIGHT = 32;

interface Row {
  label: string;
  perSecond: number;
  note: string;
}

interface Pool {
  query(text: string, values?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}

async function closedLoop(workers: number, seconds: number, once: (worker: number, i: number) => Promise<void>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; Date.now() < end; i++) {
        await once(w, i);
        done++;
      }
    }),
  );
  return done / ((Date.now() - started) / 1000);
}

async function scriptLogins(
  cluster: PostgresCluster,
  accounts: Account[],
  protocol: Protocol,
  processes: number,
  inFlight: number,
  env: Record<string, string> = {},
): Promise<number> {
  const clients = Array.from(
    { length: processes },
    () => new ScriptClient(AUTH_SQL, protocol, { AUTH_DATABASE_URL: cluster.url(), AUTH_SQL_POOL_SIZE: '8', ...env }),
  );
  try {
    // Warm up: every process connected.
    await Promise.all(clients.map((c) => c.ask({ kind: 'isuser', user: accounts[0]!.user })));
    return await closedLoop(processes * inFlight, SECONDS, async (w, i) => {
      const account = accounts[(w * 7919 + i) % accounts.length]!;
      const answer = await clients[w % processes]!.ask({ kind: 'auth', user: account.user, password: account.password });
      if (answer !== '1') throw new Error(`login of ${account.user} answered ${answer}`);
    });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function main(): Promise<void> {
  const skip = backendSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  const rows: Row[] = [];
  const cluster = await PostgresCluster.start();
  try {
    const pg = backendRequire('pg') as { Pool: new (o: { connectionString: string; max: number }) => Pool };
    const bcrypt = backendRequire('@node-rs/bcrypt') as { hash(p: string, cost: number): Promise<string> };

    // The baseline: the query auth-sql runs, straight from a pool.
    await createUsersTable(cluster, []);
    await cluster.sql(`INSERT INTO users (username, password_hash) SELECT 'user' || i, 'x' FROM generate_series(1, ${USERS}) AS i`);
    const single = (await cluster.client()) as SqlClient;
    const sequential = await closedLoop(
      1,
      SECONDS,
      async (_, i) => void (await single.query('SELECT password_hash FROM users WHERE username = $1 LIMIT 2', [`user${(i % USERS) + 1}`])),
    );
    await single.end();
    rows.push({ label: 'PostgreSQL round trip, 1 connection, lockstep', perSecond: sequential, note: 'the floor of one generic process' });
    const pool = new pg.Pool({ connectionString: cluster.url(), max: 8 });
    const pooled = await closedLoop(
      IN_FLIGHT,
      SECONDS,
      async (_, i) => void (await pool.query('SELECT password_hash FROM users WHERE username = $1 LIMIT 2', [`user${(i % USERS) + 1}`])),
    );
    await pool.end();
    rows.push({ label: `PostgreSQL round trip, pool of 8, ${IN_FLIGHT} in flight`, perSecond: pooled, note: 'the ceiling without hashing' });

    for (const cost of COSTS) {
      const accounts: Account[] = [];
      const hash = await bcrypt.hash('bench-password', cost);
      for (let i = 0; i < USERS; i++) accounts.push({ user: `user${i}`, password: 'bench-password', hash, scheme: 'bcrypt', prefix: '' });
      await createUsersTable(cluster, accounts);
      // Enough in flight to keep every core hashing; more would only queue (and slow the drain).
      const inFlight = cost >= 8 ? 8 : IN_FLIGHT;
      rows.push({
        label: `auth-sql tagged, 1 process, ${inFlight} in flight, bcrypt cost ${cost}`,
        perSecond: await scriptLogins(cluster, accounts, 'tagged', 1, inFlight),
        note: 'pool of 8, hashing on libuv threads',
      });
      for (const n of [1, 2, 4]) {
        rows.push({
          label: `auth-sql generic lockstep x ${n}, bcrypt cost ${cost}`,
          perSecond: await scriptLogins(cluster, accounts, 'generic', n, 1),
          note: `${n} process${n > 1 ? 'es' : ''}, one request each`,
        });
      }
    }

    // A database 10 ms away (a remote server, a busy one): each query waits in the database, as
    // it would on the network. Cheap hashes, so the wait is what counts.
    const hash = await bcrypt.hash('bench-password', 4);
    const accounts: Account[] = Array.from({ length: USERS }, (_, i) => ({ user: `user${i}`, password: 'bench-password', hash, scheme: 'bcrypt', prefix: '' }));
    await createUsersTable(cluster, accounts);
    await cluster.sql(`CREATE OR REPLACE FUNCTION after_10ms(value text) RETURNS text LANGUAGE sql VOLATILE AS 'SELECT pg_sleep(0.01); SELECT value'`);
    await cluster.sql('CREATE OR REPLACE VIEW remote_users AS SELECT username, after_10ms(password_hash) AS password_hash FROM users');
    const remote = { AUTH_SQL_TABLE: 'remote_users' };
    rows.push({
      label: `auth-sql tagged, 1 process, ${IN_FLIGHT} in flight, database 10 ms away`,
      perSecond: await scriptLogins(cluster, accounts, 'tagged', 1, IN_FLIGHT, remote),
      note: 'pool of 8: 8 queries waiting at once',
    });
    for (const n of [1, 4]) {
      rows.push({
        label: `auth-sql generic lockstep x ${n}, database 10 ms away`,
        perSecond: await scriptLogins(cluster, accounts, 'generic', n, 1, remote),
        note: `${n} process${n > 1 ? 'es' : ''}, one request each`,
      });
    }
  } finally {
    await cluster.destroy();
  }
  const cpu = cpus();
  process.stdout.write(
    `\nauth-sql logins/s (${SECONDS} s each; ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}; node ${process.version}; load ${(await import('node:os')).loadavg()[0]!.toFixed(2)})\n\n`,
  );
  process.stdout.write('| scenario | per second | note |\n|---|---:|---|\n');
  for (const row of rows) process.stdout.write(`| ${row.label} | ${row.perSecond.toFixed(0)} | ${row.note} |\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
