// `npm run demo`: a throwaway Prosody on free loopback ports, extauth-component with a users-file
// script, and a real XMPP client logging in -- then a short transcript of what happened.
// Everything started here is stopped, and its temp dir removed, on success, error or Ctrl-C.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ComponentProcess, MAIN_JS, REPO_ROOT } from '../support/component-process.js';
import { ProsodyServer, prosodyInstalls, shellWord, startComponentFor } from '../support/prosody.js';
import { saslPlainLogin, XmppSession } from '../support/xmpp-client.js';
import { ms, pickProsody, runDemo, say, secret } from './demo-run.js';

const EXAMPLE_SCRIPTS = join(REPO_ROOT, 'examples/scripts');

const DOMAIN = 'auth.localhost';
const USER = 'demo';
const PASSWORD = 'demo-password';

let prosody: ProsodyServer | undefined;
let component: ComponentProcess | undefined;

async function cleanUp(): Promise<void> {
  await component?.stop().catch(() => {});
  await prosody?.stop().catch(() => {});
  component = prosody = undefined;
}

async function main(): Promise<void> {
  const picked = pickProsody(process.argv.slice(2), prosodyInstalls());
  if (!picked) {
    console.error('The demo needs Prosody (0.12 or 13), which is not installed. On Debian/Ubuntu:\n\n  sudo apt-get install prosody\n');
    console.error('(Only the prosody binary is used: the demo runs its own instance with a generated config,');
    console.error(' on loopback ports; the system service can stay stopped. With several Prosody versions on');
    console.error(' the machine -- see .ci/run -- it runs the newest; --prosody 0.12 or --prosody 13 picks one.)');
    process.exitCode = 1;
    return;
  }
  if (!existsSync(MAIN_JS)) {
    say('dist/main.js is missing: running `npm run build` first');
    execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }

  say('extauth-component demo: Prosody authenticates its users through an external script');
  say(`Running ${picked.install.label}: ${picked.why}.\n`);
  prosody = await ProsodyServer.start({ components: { [DOMAIN]: secret() }, logLevel: 'info', label: 'demo prosody', install: picked.install });
  const usersFile = join(prosody.dir, 'users');
  execFileSync(join(EXAMPLE_SCRIPTS, 'users_file_add.py'), [usersFile, `${USER}@localhost`], {
    input: `${PASSWORD}\n`,
    env: { ...process.env, USERS_FILE_ITERATIONS: '50000' },
  });
  say(`1. ${prosody.install.label} runs in ${prosody.dir}`);
  say(`   clients: ${prosody.host}:${prosody.c2sPort}, components: ${prosody.host}:${prosody.componentPort}`);
  say(`   VirtualHost "localhost" uses authentication = "external_component" (examples/prosody/)`);
  say(`   and asks the component "${DOMAIN}".`);

  const script = join(EXAMPLE_SCRIPTS, 'users_file_generic.py');
  component = await startComponentFor(prosody, { domain: DOMAIN, command: `${shellWord(script)} ${shellWord(usersFile)}`, env: { LOG_LEVEL: 'warn' } });
  say(`2. The component (node dist/main.js) is connected as ${DOMAIN}. Its script:`);
  say(`   examples/scripts/users_file_generic.py users`);
  say(`   The users file holds one user, "${USER}" (password "${PASSWORD}"), as a salted hash only:`);
  say(`     ${readFileSync(usersFile, 'utf8').trim()}`);

  const client = { host: prosody.host, port: prosody.c2sPort, domain: 'localhost' };
  const session = await XmppSession.login({ ...client, username: USER, password: PASSWORD });
  say(`3. A client logs in as ${USER}@localhost with the right password: success, bound as ${session.jid}`);
  const disco = await session.iq(`<iq type='get' to='${DOMAIN}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
  const features =
    disco
      .getChild('query')
      ?.getChildren('feature')
      .map((f) => f.attrs.var) ?? [];
  say(`   Asked by that client, the component lists its features: ${features.join(', ')}`);
  await session.close();

  const wrong = await saslPlainLogin({ ...client, username: USER, password: 'not-the-password' });
  say(`4. The same user with a wrong password: refused with SASL <${wrong.condition}/> (${ms(wrong.elapsedMs)})`);

  await component.stop();
  component = undefined;
  const outage = await saslPlainLogin({ ...client, username: USER, password: PASSWORD });
  say(`5. With the component stopped, the right password gets <${outage.condition}/> (${ms(outage.elapsedMs)}):`);
  say('   "try again later", not "wrong password" -- and Prosody keeps serving everyone else.');
  say();
  say('How it works: client --SASL PLAIN--> Prosody --mod_auth_external_component: <iq/> in urn:x-extauth:0-->');
  say('  extauth-component --"auth:demo:localhost:..." on stdin--> script --"1" or "0"--> back the same way.');
  say('See docs/prosody.md to deploy it.');
}

runDemo(main, cleanUp);
