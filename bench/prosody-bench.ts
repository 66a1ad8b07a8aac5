// Prosody 0.12: logins through the shim and the component (instant script; 20 ms script × 8
// processes) against Prosody's own internal_plain (the ceiling), each on a throwaway server.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ComponentProcess } from '../test/support/component.js';
import { ProsodyServer, startComponentFor } from '../test/support/prosody.js';
import type { BenchScript } from './bench-script.js';
import { measureLogins, type LoginBenchResult, type LoginTarget } from './login-bench.js';
import type { BenchMode } from './mode.js';
import { findPid } from './proc-stats.js';
import type { Progress } from './progress.js';

export interface ProsodyBenchResult {
  internalPlain: LoginBenchResult;
  /** Instant script, 2 processes, lockstep (the defaults but for the process count). */
  componentInstant: LoginBenchResult;
  /** 20 ms script, 8 processes, lockstep. */
  component20ms: LoginBenchResult;
}

export interface ProsodyBenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

const USERS = 64;
export const PROSODY_INSTANT_PROCESSES = 2;
export const PROSODY_SLOW_PROCESSES = 8;

export async function runProsodyBench(ctx: ProsodyBenchContext): Promise<ProsodyBenchResult> {
  // A fresh server for each case: what one case leaves behind (Lua heap, sessions) must not
  // slow the next.
  const componentInstant = await throughComponent(ctx, `prosody: component, instant script ×${PROSODY_INSTANT_PROCESSES}`, PROSODY_INSTANT_PROCESSES, 0);
  const component20ms = await throughComponent(ctx, `prosody: component, 20 ms script ×${PROSODY_SLOW_PROCESSES}`, PROSODY_SLOW_PROCESSES, 20);
  const internalPlain = await withProsody(async (server) => {
    await switchToInternalPlain(server);
    return measureLogins({ label: 'prosody: internal_plain', target: targetOf(server), mode: ctx.mode, progress: ctx.progress, serverPid: findPid(server.dir) });
  });
  return { internalPlain, componentInstant, component20ms };
}

async function throughComponent(ctx: ProsodyBenchContext, label: string, processes: number, delayMs: number): Promise<LoginBenchResult> {
  return withProsody(async (server) => {
    const component: ComponentProcess = await startComponentFor(server, {
      domain: Object.keys(server.components)[0]!,
      command: ctx.script.command('generic', delayMs).line,
      env: { EXTERNAL_AUTH_PROCESSES: String(processes), EXTERNAL_AUTH_BLOCKING: 'true' },
      label: 'bench component',
    });
    try {
      return await measureLogins({ label, target: targetOf(server), mode: ctx.mode, progress: ctx.progress, serverPid: findPid(server.dir), componentPid: component.pid });
    } finally {
      await component.stop();
    }
  });
}

async function withProsody<T>(use: (server: ProsodyServer) => Promise<T>): Promise<T> {
  const server = await ProsodyServer.start({ logLevel: 'warn', label: 'bench prosody' });
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
async function switchToInternalPlain(server: ProsodyServer): Promise<void> {
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
