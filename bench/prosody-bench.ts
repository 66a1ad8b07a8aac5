// Prosody (the newest installed, or EXTAUTH_BENCH_PROSODY=0.12 / 13): logins through the shim
// and the component (instant script; 20 ms script × 8 processes) against Prosody's own
// internal_plain (the ceiling), each on a throwaway server; and one login at a time (one client
// connection), where the extra hops of the shim show as latency.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComponentProcess } from '../support/component-process.js';
import { type ProsodyInstall, prosodyInstalls, ProsodyServer, startComponentFor } from '../support/prosody.js';
import type { BenchScript } from './bench-script.js';
import { measureLogins, type LoginBenchResult, type LoginTarget } from './login-bench.js';
import { oneAtATime, type BenchMode } from './mode.js';
import { findPid } from './proc-stats.js';
import type { Progress } from './progress.js';

export interface ProsodyBenchResult {
  /** The Prosody measured, e.g. `Prosody 13.0.1`. */
  server: string;
  internalPlain: LoginBenchResult;
  /** Instant script, 2 processes, lockstep (the defaults but for the process count). */
  componentInstant: LoginBenchResult;
  /** 20 ms script, 8 processes, lockstep. */
  component20ms: LoginBenchResult;
  /** One client connection: one login at a time, internal_plain and the instant script × 2. */
  internalPlainSerial?: LoginBenchResult;
  componentInstantSerial?: LoginBenchResult;
}

export interface ProsodyBenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

const USERS = 64;
export const PROSODY_INSTANT_PROCESSES = 2;
export const PROSODY_SLOW_PROCESSES = 8;

/** The Prosody to measure: EXTAUTH_BENCH_PROSODY (a version prefix, e.g. `0.12`), else the newest. */
export function benchProsody(): ProsodyInstall | undefined {
  const wanted = process.env.EXTAUTH_BENCH_PROSODY;
  const installs = prosodyInstalls();
  return wanted ? installs.find((i) => i.version === wanted || i.version.startsWith(`${wanted}.`)) : installs.at(-1);
}

export async function runProsodyBench(ctx: ProsodyBenchContext): Promise<ProsodyBenchResult> {
  const install = benchProsody();
  if (!install) throw new Error(`no Prosody ${process.env.EXTAUTH_BENCH_PROSODY ?? ''} installed`);
  const name = `prosody ${install.version}`;
  // A fresh server for each case: what one case leaves behind (Lua heap, sessions) must not
  // slow the next.
  const componentInstant = await throughComponent(
    ctx,
    install,
    `${name}: component, instant script ×${PROSODY_INSTANT_PROCESSES}`,
    PROSODY_INSTANT_PROCESSES,
    0,
  );
  const component20ms = await throughComponent(ctx, install, `${name}: component, 20 ms script ×${PROSODY_SLOW_PROCESSES}`, PROSODY_SLOW_PROCESSES, 20);
  const internalPlain = await internalPlainLogins(ctx, install, `${name}: internal_plain`, ctx.mode);
  const serial = oneAtATime(ctx.mode);
  const componentInstantSerial = await throughComponent(
    ctx,
    install,
    `${name}: component, instant script ×${PROSODY_INSTANT_PROCESSES}, one login at a time`,
    PROSODY_INSTANT_PROCESSES,
    0,
    serial,
  );
  const internalPlainSerial = await internalPlainLogins(ctx, install, `${name}: internal_plain, one login at a time`, serial);
  return { server: install.label, internalPlain, componentInstant, component20ms, internalPlainSerial, componentInstantSerial };
}

async function internalPlainLogins(ctx: ProsodyBenchContext, install: ProsodyInstall, label: string, mode: BenchMode): Promise<LoginBenchResult> {
  return withProsody(install, async (server) => {
    await switchToInternalPlain(server);
    return measureLogins({ label, target: targetOf(server), mode, progress: ctx.progress, serverPid: findPid(server.dir) });
  });
}

async function throughComponent(
  ctx: ProsodyBenchContext,
  install: ProsodyInstall,
  label: string,
  processes: number,
  delayMs: number,
  mode = ctx.mode,
): Promise<LoginBenchResult> {
  return withProsody(install, async (server) => {
    const component: ComponentProcess = await startComponentFor(server, {
      domain: Object.keys(server.components)[0]!,
      command: ctx.script.command('generic', delayMs).line,
      env: { EXTERNAL_AUTH_PROCESSES: String(processes), EXTERNAL_AUTH_BLOCKING: 'true' },
      label: 'bench component',
    });
    try {
      return await measureLogins({
        label,
        target: targetOf(server),
        mode,
        progress: ctx.progress,
        serverPid: findPid(server.dir),
        componentPid: component.pid,
      });
    } finally {
      await component.stop();
    }
  });
}

async function withProsody<T>(install: ProsodyInstall, use: (server: ProsodyServer) => Promise<T>): Promise<T> {
  const server = await ProsodyServer.start({ install, logLevel: 'warn', label: 'bench prosody' });
  try {
    return await use(server);
  } finally {
    await server.stop();
  }
}

function targetOf(server: ProsodyServer): LoginTarget {
  return { host: server.host, port: server.c2sPort, domain: server.vhost };
}

/**
 * Rewrites the throwaway server's config to `authentication = "internal_plain"`, stores the
 * bench users as Prosody accounts (password "pw-uK") and restarts it: the same server, ports and
 * modules, with Prosody checking passwords itself.
 */
export async function switchToInternalPlain(server: ProsodyServer): Promise<void> {
  const configFile = join(server.dir, 'prosody.cfg.lua');
  const config = readFileSync(configFile, 'utf8');
  const switched = config.replace(/^\s*authentication = "external_component"$/m, '  authentication = "internal_plain"');
  if (switched === config) throw new Error('prosody bench: no authentication line to switch in the generated config');
  writeFileSync(configFile, switched);
  // data_path/<host, %-encoded>/accounts/<user>.dat, as Prosody's internal storage writes them.
  const hostDir = server.vhost.replace(/[^A-Za-z0-9]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  const accounts = join(server.dir, 'data', hostDir, 'accounts');
  mkdirSync(accounts, { recursive: true });
  for (let k = 0; k < USERS; k++) writeFileSync(join(accounts, `u${k}.dat`), `return {\n\t["password"] = "pw-u${k}";\n};\n`);
  await server.restart();
}
