// Logins by a real client, Debian's python3-slixmpp, through test/fixtures/e2e/xmpp-login.py:
// for what the tests' own minimal client does not do (SCRAM, channel binding, STARTTLS).
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/component-process.js';

/** Debian's Python: python3-slixmpp is installed for it, not for a per-user Python (pyenv). */
const PYTHON = '/usr/bin/python3';
const LOGIN_SCRIPT = join(REPO_ROOT, 'test/fixtures/e2e/xmpp-login.py');

export interface SlixmppLogin {
  host: string;
  port: number;
  /** user@domain */
  jid: string;
  password: string;
  /** The only SASL mechanism the client may use, e.g. `SCRAM-SHA-256`. */
  mechanism: string;
  /** STARTTLS before SASL (default: plain TCP). */
  starttls?: boolean;
  /** At most TLS 1.2, where tls-unique (slixmpp's channel binding) exists. */
  tls12?: boolean;
  /** CA file that signed the server's certificate. */
  ca?: string;
}

export interface SlixmppOutcome {
  outcome: 'success' | 'failure' | 'not-offered' | 'timeout' | 'error';
  /** The SASL failure condition (`not-authorized`, `temporary-auth-failure`, ...). */
  condition: string | null;
  /** The mechanisms the server offered, sorted. */
  mechanisms: string[];
}

/** undefined when slixmpp can be used; else the reason. With CI=true a missing slixmpp is an error. */
export function slixmppMissing(): string | undefined {
  if (spawnSync(PYTHON, ['-c', 'import slixmpp']).status === 0) return undefined;
  const reason = `${PYTHON} cannot import slixmpp (sudo apt-get install python3-slixmpp)`;
  if (process.env.CI === 'true') throw new Error(`SCRAM e2e tests cannot run in CI: ${reason}`);
  return reason;
}

/** One login; the password goes to the client on stdin. */
export function slixmppLogin(o: SlixmppLogin): Promise<SlixmppOutcome> {
  const args = [LOGIN_SCRIPT, o.host, String(o.port), o.jid, o.mechanism];
  if (o.starttls) args.push('--starttls');
  if (o.tls12) args.push('--tls-max', '1.2');
  if (o.ca) args.push('--ca', o.ca);
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`xmpp-login.py failed: ${error.message}\n${stdout}${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as SlixmppOutcome);
      } catch {
        reject(new Error(`xmpp-login.py printed no outcome:\n${stdout}${stderr}`));
      }
    });
    child.stdin!.end(`${o.password}\n`);
  });
}
