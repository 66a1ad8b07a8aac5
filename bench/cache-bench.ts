// The credential cache: logins per second through Prosody with a 20 ms script, cache off and on.
// The bench users (64, cycled) log in again and again, so with the cache on all but each user's
// first login are answered without the script. A fresh server and component per case.
//
//   npx tsx bench/cache-bench.ts [--no-build]      (about a minute; prints a Markdown table)
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { ComponentProcess } from '../support/component-process.js';
import { findProsody, ProsodyServer, startComponentFor } from '../support/prosody.js';
import { BenchScript } from './bench-script.js';
import { REPO_ROOT_FROM_BENCH } from './child.js';
import { measureLogins, type LoginBenchResult } from './login-bench.js';
import { QUICK, type BenchMode } from './mode.js';
import { findPid } from './proc-stats.js';
import { Progress } from './progress.js';
import { PROSODY_SLOW_PROCESSES } from './prosody-bench.js';

export interface CacheBenchResult {
  off: LoginBenchResult;
  on: LoginBenchResult;
}

export interface CacheBenchContext {
  mode: BenchMode;
  script: BenchScript;
  progress: Progress;
}

const SCRIPT_DELAY_MS = 20;
const CACHE_ON = { EXTERNAL_AUTH_CACHE_TTL: '600', EXTERNAL_AUTH_CACHE_STALE: '3600' };

export async function runCacheBench(ctx: CacheBenchContext): Promise<CacheBenchResult> {
  const off = await loginsThroughProsody(ctx, `prosody: 20 ms script ×${PROSODY_SLOW_PROCESSES}, cache off`, {});
  const on = await loginsThroughProsody(ctx, `prosody: 20 ms script ×${PROSODY_SLOW_PROCESSES}, cache on (repeat logins)`, CACHE_ON);
  return { off, on };
}

async function loginsThroughProsody(ctx: CacheBenchContext, label: string, env: Record<string, string>): Promise<LoginBenchResult> {
  const server = await ProsodyServer.start({ logLevel: 'warn', label: 'bench prosody' });
  try {
    const component: ComponentProcess = await startComponentFor(server, {
      domain: Object.keys(server.components)[0]!,
      command: ctx.script.command('generic', SCRIPT_DELAY_MS).line,
      env: { EXTERNAL_AUTH_PROCESSES: String(PROSODY_SLOW_PROCESSES), EXTERNAL_AUTH_BLOCKING: 'true', ...env },
      label: 'bench component',
    });
    try {
      return await measureLogins({
        label,
        target: { host: server.host, port: server.c2sPort, domain: server.vhost },
        mode: ctx.mode,
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

/** The figures as a Markdown table. */
export function cacheTable(result: CacheBenchResult): string {
  const row = (r: LoginBenchResult) =>
    `| ${r.label} | ${Math.round(r.summary.rate)} | ${r.summary.p50Ms.toFixed(1)} | ${r.summary.p99Ms.toFixed(1)} | ${pct(r.summary.serverCpu)} | ${pct(r.summary.componentCpu)} | ${failures(r)} |`;
  return [
    '| case | logins/s | p50 ms | p99 ms | Prosody CPU | component CPU | failed |',
    '|---|---:|---:|---:|---:|---:|---|',
    row(result.off),
    row(result.on),
  ].join('\n');
}

const pct = (share: number) => (Number.isFinite(share) ? `${Math.round(share * 100)} %` : 'n/a');
const failures = (r: LoginBenchResult) =>
  Object.entries(r.summary.failures)
    .map(([condition, n]) => `${n} ${condition}`)
    .join(', ') || '0';

async function main(): Promise<void> {
  if (!findProsody()) throw new Error('prosody is not installed');
  if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT_FROM_BENCH, stdio: ['ignore', 'ignore', 'inherit'] });
  const script = BenchScript.build();
  try {
    const result = await runCacheBench({ mode: QUICK, script, progress: new Progress() });
    process.stdout.write(
      `${cacheTable(result)}\n\n${QUICK.runs} runs of ${QUICK.loginsPerRun} logins over ${QUICK.loginConnections} connections each (median), 64 users cycled.\n`,
    );
  } finally {
    script.remove();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((error: Error) => {
    process.stderr.write(`${error.stack ?? error.message}\n`);
    process.exit(1);
  });
}
