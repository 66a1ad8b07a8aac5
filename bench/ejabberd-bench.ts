// ejabberd (the newest installed, or EXTAUTH_BENCH_EJABBERD=23.01 / 24.12): logins through the
// shim and the component against ejabberd's own extauth running the same script with the same
// pool size.
import { randomUUID } from 'node:crypto';
import { ComponentProcess } from '../support/component-process.js';
import { type EjabberdInstall, ejabberdInstalls, EjabberdServer } from '../support/ejabberd.js';
import type { BenchScript } from './bench-script.js';
import { measureLogins, type LoginBenchResult } from './login-bench.js';
import { oneAtATime, type BenchMode } from './mode.js';
import { findPid } from './proc-stats.js';
import type { Progress } from './progress.js';

export interface EjabberdComparison {
  /** The ejabberd measured, e.g. `ejabberd 24.12`. */
  server: string;
  /** Script delay in ms (0: instant) and pool size, the same on both sides. */
  delayMs: number;
  processes: number;
  /** Logins one at a time (one client connection) rather than concurrently. */
  oneAtATime: boolean;
  native: LoginBenchResult;
  component: LoginBenchResult;
}

export interface EjabberdBenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

const DOMAIN = 'auth.localhost';

/**
 * The comparisons this mode makes: always the 20 ms script × 8 and the instant script × 2 one
 * login at a time (where the shim's extra hops show as latency); in full mode also instant × 2
 * under concurrent logins.
 */
export function ejabberdCases(mode: BenchMode): Array<{ delayMs: number; processes: number; oneAtATime: boolean }> {
  return [
    { delayMs: 20, processes: 8, oneAtATime: false },
    ...(mode.ejabberdInstant ? [{ delayMs: 0, processes: 2, oneAtATime: false }] : []),
    { delayMs: 0, processes: 2, oneAtATime: true },
  ];
}

/** The ejabberd to measure: EXTAUTH_BENCH_EJABBERD (a version prefix, e.g. `23.01`), else the newest. */
export function benchEjabberd(): EjabberdInstall | undefined {
  const wanted = process.env.EXTAUTH_BENCH_EJABBERD;
  const installs = ejabberdInstalls();
  return wanted ? installs.find((i) => i.version === wanted || i.version.startsWith(`${wanted}.`)) : installs.at(-1);
}

export async function runEjabberdBench(ctx: EjabberdBenchContext): Promise<EjabberdComparison[]> {
  const install = benchEjabberd();
  if (!install) throw new Error(`no ejabberd ${process.env.EXTAUTH_BENCH_EJABBERD ?? ''} installed`);
  const name = `ejabberd ${install.version}`;
  const results: EjabberdComparison[] = [];
  for (const { delayMs, processes, oneAtATime: serial } of ejabberdCases(ctx.mode)) {
    const scriptLabel = delayMs === 0 ? 'instant script' : `${delayMs} ms script`;
    const mode = serial ? oneAtATime(ctx.mode) : ctx.mode;
    const suffix = serial ? ', one login at a time' : '';
    const native = await nativeExtauth(ctx, install, delayMs, processes, `${name}: native extauth, ${scriptLabel}, pool ${processes}${suffix}`, mode);
    const component = await throughComponent(ctx, install, delayMs, processes, `${name}: component, ${scriptLabel} ×${processes}${suffix}`, mode);
    results.push({ server: install.label, delayMs, processes, oneAtATime: serial, native, component });
  }
  return results;
}

async function nativeExtauth(
  ctx: EjabberdBenchContext,
  install: EjabberdInstall,
  delayMs: number,
  processes: number,
  label: string,
  mode: BenchMode,
): Promise<LoginBenchResult> {
  const server = await EjabberdServer.start({
    install,
    authMethod: 'external',
    extauthProgram: ctx.script.command('ejabberd', delayMs).line,
    // The generated config pins extauth_pool_size to 1; a per-host value overrides it.
    extraConfig: ['host_config:', '  localhost:', `    extauth_pool_size: ${processes}`].join('\n'),
    label: 'bench ejabberd (native extauth)',
  });
  try {
    return await measureLogins({
      label,
      target: { host: server.host, port: server.c2sPort, domain: server.vhost },
      mode,
      progress: ctx.progress,
      serverPid: findPid(server.dir),
    });
  } finally {
    await server.stop();
  }
}

async function throughComponent(
  ctx: EjabberdBenchContext,
  install: EjabberdInstall,
  delayMs: number,
  processes: number,
  label: string,
  mode: BenchMode,
): Promise<LoginBenchResult> {
  const secret = randomUUID();
  const server = await EjabberdServer.start({
    install,
    shim: { component: DOMAIN, timeout: 5 },
    service: { hosts: { [DOMAIN]: secret } },
    label: 'bench ejabberd (component)',
  });
  try {
    const component = await ComponentProcess.start({
      service: server.serviceUri,
      domain: DOMAIN,
      secret,
      protocol: 'ejabberd',
      command: ctx.script.command('ejabberd', delayMs).line,
      env: { EXTERNAL_AUTH_PROCESSES: String(processes), EXTERNAL_AUTH_BLOCKING: 'true' },
      label: 'bench component',
    });
    try {
      return await measureLogins({
        label,
        target: { host: server.host, port: server.c2sPort, domain: server.vhost },
        mode,
        progress: ctx.progress,
        serverPid: findPid(server.dir),
        componentPid: component.pid,
      });
    } finally {
      await component.stop();
    }
  } finally {
    await server.stop();
  }
}
