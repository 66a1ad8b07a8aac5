import { ConfigErrors, loadSettings } from '../config/config.js';
import type { Service } from '../config/parsers.js';
import { ComponentStream, LinkError } from '../xmpp/component-stream.js';

export const CHECK_SERVER_TIMEOUT_MS = 10_000;

/** The settings `check-server` needs: where the server is and who the component is. */
export interface ServerConfig {
  readonly service: Service;
  readonly domain: string;
  readonly secret: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Reads only the XMPP_* settings, through the same table and parsers as the daemon. */
export function loadServerConfig(env: Env, cwd = process.cwd()): ServerConfig {
  const { service, domain, secret } = loadSettings(['service', 'domain', 'secretFile', 'secret'], env, cwd);
  return { service, domain, secret };
}

/**
 * 0: the handshake was accepted. 1: it was not, for the reason printed. 2: a configuration
 * error. 3: the domain is taken by a component already connected (the running service, as a
 * rule), so no second handshake can complete.
 */
export const CHECK_SERVER_EXIT = { ok: 0, failed: 1, config: 2, connectedElsewhere: 3 } as const;

export interface CheckServerOutput {
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
}

/**
 * `extauth-component check-server`: one connection, one handshake, one verdict (exit codes in
 * CHECK_SERVER_EXIT). Never retries, never prints the secret.
 */
export async function runCheckServer(env: Env, output: CheckServerOutput, timeoutMs = CHECK_SERVER_TIMEOUT_MS): Promise<number> {
  let config: ServerConfig;
  try {
    config = loadServerConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigErrors)) throw error;
    for (const line of error.message.split('\n')) output.err(line);
    return CHECK_SERVER_EXIT.config;
  }
  const { service, domain, secret } = config;
  const where = `${service.host}:${service.port}`;
  try {
    const stream = await ComponentStream.open({ service, domain, secret, timeoutMs, onStanza: () => {} });
    await stream.close();
    output.out(`handshake accepted by ${where} as ${domain}${service.tls ? ' (TLS, certificate verified)' : ''}`);
    return CHECK_SERVER_EXIT.ok;
  } catch (error) {
    if (!(error instanceof LinkError)) throw error;
    if (error.reason === 'conflict') {
      // The normal state of a working installation, not a fault: said on stdout, with its own status.
      output.out(
        `${where} knows ${domain}, and it is already taken by a connected component (is the service running?): ` +
          'the server refuses a second one, so the handshake cannot complete and the secret cannot be fully checked while it is connected. ' +
          'Prosody checks the secret before it refuses a second component, so there XMPP_SECRET is right; stop the service to check the rest',
      );
      return CHECK_SERVER_EXIT.connectedElsewhere;
    }
    output.err(`${where} as ${domain}: ${error.message}`);
    return CHECK_SERVER_EXIT.failed;
  }
}
