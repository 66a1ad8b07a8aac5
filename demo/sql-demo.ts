// `npm run demo:sql`: the demo with accounts in a PostgreSQL table -- a throwaway PostgreSQL
// holding a web application's user row (a bcrypt hash), a throwaway Prosody, extauth-component
// running examples/backends/sql/auth-sql in tagged (one process), and a real XMPP client logging
// in; then the database is stopped and started again. Everything started here is stopped, and
// its temp dirs removed, on success, error or Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createUsersTable } from '../support/backends/accounts.js';
import { AUTH_SQL, backendRequire, backendSkipReason, PostgresCluster } from '../support/backends/postgres.js';
import { type ComponentProcess, MAIN_JS, REPO_ROOT } from '../support/component-process.js';
import { ProsodyServer, prosodyInstalls, startComponentFor } from '../support/prosody.js';
import { saslPlainLogin, XmppSession } from '../support/xmpp-client.js';
import { ms, pickProsody, runDemo, say, secret } from './demo-run.js';

const DOMAIN = 'auth.localhost';
const USER = 'demo';
const PASSWORD = 'demo-password';

let cluster: PostgresCluster | undefined;
let prosody: ProsodyServer | undefined;
let component: ComponentProcess | undefined;

async function cleanUp(): Promise<void> {
  await component?.stop().catch(() => {});
  await prosody?.stop().catch(() => {});
  await cluster?.destroy().catch(() => {});
  component = prosody = cluster = undefined;
}

async function main(): Promise<void> {
  const picked = pickProsody(process.argv.slice(2), prosodyInstalls());
  const missing = picked ? backendSkipReason() : 'Prosody (apt-get install prosody)';
  if (missing || !picked) {
    console.error(`This demo needs ${missing}.`);
    console.error('On Debian/Ubuntu: sudo apt-get install prosody postgresql; then examples/backends/install.sh');
    process.exitCode = 1;
    return;
  }
  if (!existsSync(MAIN_JS)) {
    say('dist/main.js is missing: running `npm run build` first');
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }

  say('extauth-component demo: Prosody logs users in from a PostgreSQL table');
  say(`Running ${picked.install.label}: ${picked.why}.\n`);
  cluster = await PostgresCluster.start();
  const bcrypt = backendRequire('@node-rs/bcrypt') as { hash(password: string, cost: number): Promise<string> };
  const hash = await bcrypt.hash(PASSWORD, 10);
  await createUsersTable(cluster, [{ user: USER, password: PASSWORD, hash, scheme: 'bcrypt', prefix: '' }]);
  say(`1. PostgreSQL runs in ${cluster.dir} (port ${cluster.port}); its table "users" has the row`);
  say(`   username = '${USER}', password_hash = '${hash}'`);
  say('   -- a bcrypt hash, as a web application stores it.');

  prosody = await ProsodyServer.start({ components: { [DOMAIN]: secret() }, logLevel: 'info', label: 'demo prosody', install: picked.install });
  say(`2. ${prosody.install.label} runs in ${prosody.dir} (clients: ${prosody.host}:${prosody.c2sPort});`);
  say(`   VirtualHost "localhost" uses authentication = "external_component" and asks "${DOMAIN}".`);

  component = await startComponentFor(prosody, {
    domain: DOMAIN,
    command: AUTH_SQL,
    env: { LOG_LEVEL: 'error', EXTERNAL_AUTH_PROTOCOL: 'tagged', EXTERNAL_AUTH_PROCESSES: '1', AUTH_DATABASE_URL: cluster.url() },
  });
  say(`3. The component is connected as ${DOMAIN}, running one examples/backends/sql/auth-sql process`);
  say('   in the tagged protocol, configured by AUTH_DATABASE_URL only (the defaults name this table).');

  const client = { host: prosody.host, port: prosody.c2sPort, domain: 'localhost' };
  const session = await XmppSession.login({ ...client, username: USER, password: PASSWORD });
  say(`4. A client logs in as ${USER}@localhost with the right password: success, bound as ${session.jid}`);
  await session.close();
  const wrong = await saslPlainLogin({ ...client, username: USER, password: 'not-the-password' });
  say(`5. A wrong password: SASL <${wrong.condition}/> (${ms(wrong.elapsedMs)})`);

  await cluster.stopServer();
  const outage = await saslPlainLogin({ ...client, username: USER, password: PASSWORD });
  say(`6. PostgreSQL stopped: the right password gets <${outage.condition}/> (${ms(outage.elapsedMs)}) --`);
  say('   "try again later", never "wrong password": the script answered "my backend failed" and stays up.');
  await cluster.startServer();
  const back = await saslPlainLogin({ ...client, username: USER, password: PASSWORD });
  say(
    `7. PostgreSQL started again: the next login ${back.ok ? 'succeeds' : `gets <${back.condition}/>`} (${ms(back.elapsedMs)}), with no restart of anything.`,
  );
  say();
  say('See docs/backends.md to set it up against your own table (a read-only role, TLS, other hash formats).');
}

runDemo(main, cleanUp);
