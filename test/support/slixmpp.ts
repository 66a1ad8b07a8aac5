// Logins by a real client: test/fixtures/sasl-login.py (slixmpp, Debian's python3-slixmpp) with
// one chosen SASL mechanism. For SCRAM, slixmpp also checks the server's final signature, so a
// success proves the server held the right server key too.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { REPO_ROOT } from '../../support/component-process.js';
import { endStdin } from './child-stdin.js';

const LOGIN_SCRIPT = join(REPO_ROOT, 'test/fixtures/sasl-login.py');

export interface SaslLoginReport {
  /** `ok`, `refused` (the server said no), `unavailable` (mechanism not offered) or `error`. */
  result: 'ok' | 'refused' | 'unavailable' | 'error';
  mechanism: string;
  /** The mechanisms the server offered. */
  offered: string[];
  /** The SASL failure condition (e.g. `not-authorized`), or what went wrong. */
  condition: string | null;
}

let python: string | undefined | null = null;

/** A python3 that has slixmpp (the one on PATH may be another installation), or undefined. */
export function slixmppPython(): string | undefined {
  if (python === null) {
    python = ['python3', '/usr/bin/python3'].find((candidate) => {
      try {
        execFileSync(candidate, ['-c', 'import slixmpp'], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    });
  }
  return python;
}

/** Why slixmpp logins cannot run here, or undefined. With CI=true a missing slixmpp is an error. */
export function slixmppSkipReason(): string | undefined {
  if (slixmppPython()) return undefined;
  const reason = 'python3-slixmpp is not installed (apt-get install python3-slixmpp)';
  if (process.env.CI === 'true') throw new Error(`slixmpp logins cannot run in CI: ${reason}`);
  return reason;
}

export interface SlixmppLoginOptions {
  host: string;
  port: number;
  jid: string;
  mechanism: string;
  password: string;
  /** STARTTLS, trusting this CA file (default: no TLS). */
  starttls?: string;
  /** With starttls: at most TLS 1.2, where tls-unique (slixmpp's only -PLUS binding) exists. */
  tls12?: boolean;
}

/** Logs in as `jid` with `mechanism` only; the password goes to the script on stdin. */
export function slixmppLogin(options: SlixmppLoginOptions): Promise<SaslLoginReport> {
  const interpreter = slixmppPython();
  if (!interpreter) throw new Error(slixmppSkipReason());
  const tls = options.starttls ? ['--starttls', options.starttls, ...(options.tls12 ? ['--tls12'] : [])] : [];
  return new Promise((resolve, reject) => {
    const child = spawn(interpreter, [LOGIN_SCRIPT, options.host, String(options.port), options.jid, options.mechanism, ...tls], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(line) as SaslLoginReport);
      } catch {
        reject(new Error(`sasl-login.py exited ${code} without a report\n${stdout}${stderr}`));
      }
    });
    endStdin(child.stdin, `${options.password}\n`);
  });
}
