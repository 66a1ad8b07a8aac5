// Starts what one login path needs, fresh: a throwaway server of the given generation set up for
// that path, and the component when the path goes through it; stop() ends both. What one path
// leaves behind (Lua heap, sessions, Erlang processes) never slows the next.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComponentProcess, REPO_ROOT } from '../support/component-process.js';
import { type EjabberdInstall, EjabberdServer } from '../support/ejabberd.js';
import { type ProsodyInstall, ProsodyServer, SHIM_DIR, shellWord } from '../support/prosody.js';
import { registerAccount, saslLogin } from '../support/xmpp-client.js';
import type { BenchScript } from './bench-script.js';
import { delayMs, LOCKSTEP_PROCESSES, type LoginPath, USERS } from './cases.js';
import type { InProcessModule } from './in-process-module.js';
import { findPid } from './proc-stats.js';

export type Generation = { kind: 'prosody'; install: ProsodyInstall; label: string } | { kind: 'ejabberd'; install: EjabberdInstall; label: string };

export interface LoginTarget {
  host: string;
  port: number;
  /** The VirtualHost. */
  domain: string;
}

export interface RunningCase {
  target: LoginTarget;
  serverPid: number | undefined;
  componentPid: number | undefined;
  stop(): Promise<void>;
}

export interface CaseTools {
  script: BenchScript;
  /** Prosody's in-process module, when set up. */
  inProcess: InProcessModule | undefined;
  /** The bench users' SCRAM-SHA-256 credentials, one `USER ANSWER` line each (bench-script.c reads it). */
  scramFile: string;
}

const AUTH_DOMAIN = 'auth.localhost';
const EJABBERD_SHIM = join(REPO_ROOT, 'examples/ejabberd/mod_auth_external_component/src/mod_auth_external_component.erl');

export const bothPasswords = (): Record<string, string> => Object.fromEntries(Array.from({ length: USERS }, (_, k) => [`u${k}`, `pw-u${k}`]));

/** Why a path cannot run here (a sentence for the report), or undefined when it can. */
export function unavailable(server: 'prosody' | 'ejabberd', path: LoginPath, tools: CaseTools): string | undefined {
  if (path.kind === 'in-process' && !tools.inProcess) return 'the in-process module is not set up (npm run bench:setup)';
  if (path.mechanism === 'SCRAM-SHA-256') {
    if (server === 'prosody' && !readFileSync(join(SHIM_DIR, 'mod_auth_external_component.lua'), 'utf8').includes('external_auth_scram'))
      return 'the Prosody shim has no `external_auth_scram` option (SCRAM through the component is not in this build)';
    if (server === 'ejabberd' && !readFileSync(EJABBERD_SHIM, 'utf8').includes('{scram,'))
      return 'the ejabberd shim has no `scram` option (SCRAM through the component is not in this build)';
    if (!componentKnowsScram()) return 'the component has no `scram` request kind in this build';
  }
  return undefined;
}

/** Whether the component's source names a `scram` request kind. */
function componentKnowsScram(): boolean {
  const src = join(REPO_ROOT, 'src');
  return readdirSync(src, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts'))
    .some((file) => readFileSync(join(src, file), 'utf8').includes("'scram'"));
}

export async function startCase(gen: Generation, path: LoginPath, tools: CaseTools): Promise<RunningCase> {
  return gen.kind === 'prosody' ? startProsodyCase(gen.install, path, tools) : startEjabberdCase(gen.install, path, tools);
}

async function startProsodyCase(install: ProsodyInstall, path: LoginPath, tools: CaseTools): Promise<RunningCase> {
  const common = { install, logLevel: 'warn' as const, label: 'bench prosody', components: { [AUTH_DOMAIN]: randomUUID() } };
  if (path.kind === 'internal') return prosodyOnly(await ProsodyServer.start({ ...common, authentication: 'internal_plain', accounts: bothPasswords() }));
  if (path.kind === 'in-process') {
    const module = tools.inProcess!;
    // The module starts its command without arguments (lpty's startproc): a wrapper adds them.
    const wrapper = join(tools.script.workDir, `generic-${delayMs(path.script)}.sh`);
    writeFileSync(wrapper, `#!/bin/sh\nexec ${tools.script.command('generic', delayMs(path.script)).line}\n`, { mode: 0o755 });
    return prosodyOnly(
      await ProsodyServer.start({
        ...common,
        authentication: 'external_insecure',
        pluginPaths: [module.pluginDir],
        env: { LUA_CPATH_5_4: `${module.cpathDir}/?.so;;`, LUA_CPATH: `${module.cpathDir}/?.so;;` },
        hostConfig: [`external_auth_command = "${wrapper}"`, 'external_auth_protocol = "generic"'],
      }),
    );
  }
  const server = await ProsodyServer.start({ ...common, ...(path.mechanism === 'SCRAM-SHA-256' ? { scram: ['sha-256'] } : {}) });
  try {
    const target = { host: server.host, port: server.c2sPort, domain: server.vhost };
    const component = await startComponent(path, tools, server.serviceUri, server.components[AUTH_DOMAIN]!, 'generic', target);
    return {
      target,
      serverPid: findPid(server.dir),
      componentPid: component.pid,
      stop: async () => {
        await component.stop();
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

function prosodyOnly(server: ProsodyServer): RunningCase {
  return {
    target: { host: server.host, port: server.c2sPort, domain: server.vhost },
    serverPid: findPid(server.dir),
    componentPid: undefined,
    stop: () => server.stop(),
  };
}

async function startEjabberdCase(install: EjabberdInstall, path: LoginPath, tools: CaseTools): Promise<RunningCase> {
  const secret = randomUUID();
  const label = `bench ejabberd (${path.kind})`;
  const server =
    path.kind === 'internal'
      ? await EjabberdServer.start({ install, authMethod: 'mnesia', label })
      : path.kind === 'native'
        ? await EjabberdServer.start({
            install,
            authMethod: 'external',
            extauthProgram: tools.script.command('ejabberd', delayMs(path.script)).line,
            // The generated config pins extauth_pool_size to 1; a per-host value overrides it.
            extraConfig: ['host_config:', '  localhost:', `    extauth_pool_size: ${LOCKSTEP_PROCESSES}`].join('\n'),
            label,
          })
        : await EjabberdServer.start({
            install,
            service: { hosts: { [AUTH_DOMAIN]: secret } },
            label,
            ...(path.mechanism === 'SCRAM-SHA-256'
              ? // A SCRAM store whose hash is SHA-256 (ejabberd's default is SHA-1).
                { shim: { component: AUTH_DOMAIN, timeout: 5, scram: true }, extraConfig: 'auth_scram_hash: sha256' }
              : { shim: { component: AUTH_DOMAIN, timeout: 5 } }),
          });
  const target = { host: server.host, port: server.c2sPort, domain: server.vhost };
  try {
    if (path.kind === 'internal') {
      // ejabberd's own store, filled by in-band registration (its config allows it).
      for (const [user, password] of Object.entries(bothPasswords())) {
        const reply = await registerAccount({ ...target, username: user, password });
        if (reply.attrs.type !== 'result') throw new Error(`registering ${user} on ejabberd failed: ${reply.toString()}`);
      }
    }
    const component =
      path.kind === 'lockstep' || path.kind === 'tagged' ? await startComponent(path, tools, server.serviceUri, secret, 'ejabberd', target) : undefined;
    return {
      target,
      serverPid: findPid(server.dir),
      componentPid: component?.pid,
      stop: async () => {
        await component?.stop();
        await server.stop();
      },
    };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/**
 * The component for a lockstep path (8 processes, one request each) or a tagged one (one process,
 * requests pipelined); ready once a real login through the server succeeds.
 */
async function startComponent(
  path: LoginPath,
  tools: CaseTools,
  service: string,
  secret: string,
  classic: 'generic' | 'ejabberd',
  target: LoginTarget,
): Promise<ComponentProcess> {
  const protocol = path.kind === 'tagged' ? 'tagged' : path.mechanism === 'SCRAM-SHA-256' ? 'generic' : classic;
  const scram = path.mechanism === 'SCRAM-SHA-256' ? tools.scramFile : undefined;
  const command = tools.script.command(protocol, delayMs(path.script), scram);
  return ComponentProcess.start({
    service,
    domain: AUTH_DOMAIN,
    secret,
    command: command.line.split(' ').map(shellWord).join(' '),
    env: {
      EXTERNAL_AUTH_PROTOCOL: protocol,
      EXTERNAL_AUTH_PROCESSES: String(path.kind === 'tagged' ? 1 : LOCKSTEP_PROCESSES),
      EXTERNAL_AUTH_BLOCKING: String(path.kind !== 'tagged'),
      // warn: no line per answered query (that costs about 20 µs of CPU per request).
      LOG_LEVEL: 'warn',
    },
    label: 'bench component',
    probe: async () => (await saslLogin({ ...target, username: 'u0', password: 'pw-u0', mechanism: 'PLAIN', timeoutMs: 2000 }).catch(() => ({ ok: false }))).ok,
  });
}
