// A two-node ejabberd cluster (test/support/ejabberd-cluster.ts): logins per second made on
// node B when the component is connected to node B itself, and when it is connected to node A
// only (each request and answer then crosses the cluster's Erlang distribution link).
//
//   npx tsx bench/ejabberd-cluster-bench.ts [--no-build]      (about a minute; prints a Markdown table)
import { execFileSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { ComponentProcess } from '../support/component-process.js';
import { sleep } from '../support/wait.js';
import { EjabberdCluster, type EjabberdNode } from '../test/support/ejabberd-cluster.js';
import { ejabberdSkipReason } from '../support/ejabberd.js';
import { randomSecret } from '../support/ports.js';
import { BenchScript } from './bench-script.js';
import { REPO_ROOT_FROM_BENCH } from './child.js';
import { measureLogins, type LoginBenchResult } from './login-bench.js';
import { QUICK, type BenchMode } from './mode.js';
import { findPid } from './proc-stats.js';
import { Progress } from './progress.js';

const DOMAIN = 'auth.localhost';
/** Short runs: four cases on a cluster must fit in about a minute. */
const MODE: BenchMode = { ...QUICK, runs: 2, loginsPerRun: 600, warmupLogins: 100 };
const CASES = [
  { delayMs: 0, processes: 2 },
  { delayMs: 20, processes: 8 },
] as const;

export interface ClusterBenchContext {
  script: BenchScript;
  progress: Progress;
}

export interface ClusterBenchCase {
  /** Where the component is connected. */
  where: string;
  result: LoginBenchResult;
}

export async function runClusterBench({ script, progress }: ClusterBenchContext): Promise<ClusterBenchCase[]> {
  const secret = randomSecret();
  const cluster = await EjabberdCluster.start({ component: { domain: DOMAIN, secret }, shimTimeout: '10000 ms' });
  const results: ClusterBenchCase[] = [];
  try {
    const [nodeA, nodeB] = cluster.nodes as [EjabberdNode, EjabberdNode];
    const serverPid = findPid(nodeB.name);
    for (const { delayMs, processes } of CASES) {
      for (const [where, node] of [
        ['component on B (local)', nodeB],
        ['component on A only (across the cluster)', nodeA],
      ] as const) {
        const component = await ComponentProcess.start({
          label: 'bench component',
          service: node.serviceUri,
          domain: DOMAIN,
          secret,
          protocol: 'ejabberd',
          command: script.command('ejabberd', delayMs).line,
          env: { EXTERNAL_AUTH_PROCESSES: String(processes), EXTERNAL_AUTH_BLOCKING: 'true' },
        });
        try {
          while (JSON.stringify(cluster.routeNodes(nodeB.name, DOMAIN)) !== JSON.stringify([node.name])) await sleep(200);
          const label = `ejabberd cluster, logins on B, ${delayMs === 0 ? 'instant' : `${delayMs} ms`} script ×${processes}, ${where}`;
          const result = await measureLogins({
            label,
            target: { host: nodeB.host, port: nodeB.c2sPort, domain: cluster.vhost },
            mode: MODE,
            progress,
            ...(serverPid ? { serverPid } : {}),
            ...(component.pid ? { componentPid: component.pid } : {}),
          });
          results.push({ where, result });
        } finally {
          await component.stop();
        }
        while (cluster.routeNodes(nodeB.name, DOMAIN).length > 0) await sleep(200);
      }
    }
  } finally {
    await cluster.stop();
  }
  return results;
}

/** The figures as a Markdown table. */
export function clusterTable(results: ClusterBenchCase[]): string {
  const pct = (share: number) => (Number.isFinite(share) ? `${Math.round(share * 100)} %` : 'n/a');
  return [
    '| case | logins/s | p50 ms | p99 ms | node B CPU | component CPU | failed |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...results.map(
      ({ result: r }) =>
        `| ${r.label} | ${Math.round(r.summary.rate)} | ${r.summary.p50Ms.toFixed(1)} | ${r.summary.p99Ms.toFixed(1)} | ${pct(r.summary.serverCpu)} | ${pct(r.summary.componentCpu)} | ${Object.values(r.summary.failures).reduce((a, b) => a + b, 0)} |`,
    ),
    '',
    `${MODE.runs} runs of ${MODE.loginsPerRun} logins over ${MODE.loginConnections} connections each (median).`,
  ].join('\n');
}

async function main(): Promise<void> {
  const skip = ejabberdSkipReason();
  if (skip) throw new Error(skip);
  if (!process.argv.includes('--no-build')) execFileSync('npm', ['run', 'build'], { cwd: REPO_ROOT_FROM_BENCH, stdio: ['ignore', 'ignore', 'inherit'] });
  const script = BenchScript.build();
  try {
    process.stdout.write(`${clusterTable(await runClusterBench({ script, progress: new Progress() }))}\n`);
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
