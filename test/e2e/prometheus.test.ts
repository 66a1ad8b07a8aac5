// A real Prometheus (Debian's binary, on a free loopback port, with a throwaway configuration and
// data directory) scrapes a running component and evaluates the shipped rules from
// examples/prometheus, with every `for:` shortened to a second. While the scripts answer, no alert
// is pending; once they die and cannot be started again, ExtauthScriptsDown fires.
// The component talks to the fake XEP-0114 server: the point here is that Prometheus is real.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sleep } from '../../support/wait.js';
import { FIXTURE, type Harness, ROOT, startHarness } from '../integration/harness.js';
import { freePorts } from '../support/ports.js';

const RULES = path.join(ROOT, 'examples/prometheus/extauth-component.rules.yml');
/** How often Prometheus scrapes and evaluates, and how often the test asks it. */
const INTERVAL = '1s';
const POLL_MS = 250;
const WAIT_MS = 60_000;

const version = spawnSync('prometheus', ['--version'], { encoding: 'utf8' });
const missing = version.status === 0 ? '' : 'prometheus is not installed (Debian package prometheus)';
if (missing && process.env.CI === 'true') throw new Error(`Prometheus e2e test cannot run in CI: ${missing}`);
const label = /version (\S+)/.exec(version.stdout)?.[1] ?? '';

interface Alert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
}

/** Asks `check` until it returns something, every POLL_MS, for at most WAIT_MS. */
async function poll<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  let last: unknown;
  for (;;) {
    try {
      const found = await check();
      if (found !== undefined) return found;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`no ${what} within ${WAIT_MS} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(POLL_MS);
  }
}

/** The component's children (its script processes), from /proc. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        // pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis.
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

describe(`Prometheus ${label} scrapes the component and evaluates the shipped rules`, { skip: missing || false }, () => {
  let dir: string;
  let h: Harness;
  let prometheus: ChildProcess;
  let api: string;
  let prometheusLog = '';

  async function get<T>(query: string): Promise<T> {
    const res = await fetch(`${api}${query}`);
    const body = (await res.json()) as { status: string; data: T };
    assert.equal(body.status, 'success', `${query}: ${JSON.stringify(body)}`);
    return body.data;
  }
  const alerts = async () => (await get<{ alerts: Alert[] }>('/api/v1/alerts')).alerts;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'extauth-prometheus-'));
    const broken = path.join(dir, 'broken');
    const [httpPort, prometheusPort] = await freePorts(2);
    // The script starts normally until the file `broken` exists; from then on it exits at once.
    h = await startHarness({
      command: (record) => `/bin/sh -c 'test -e "$0" && exit 3; exec "$1" --record "$2"' ${broken} ${FIXTURE} ${record}`,
      env: { HTTP_LISTEN: `127.0.0.1:${httpPort}`, EXTERNAL_AUTH_PROCESSES: '2', LOG_LEVEL: 'info' },
    });
    writeFileSync(path.join(dir, 'rules.yml'), readFileSync(RULES, 'utf8').replace(/^(\s+for:) \S+$/gm, `$1 ${INTERVAL}`));
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        `  scrape_interval: ${INTERVAL}`,
        `  evaluation_interval: ${INTERVAL}`,
        'rule_files: [rules.yml]',
        'scrape_configs:',
        '  - job_name: extauth-component',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${httpPort}']`,
        '',
      ].join('\n'),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${prometheusPort}`,
        '--log.level=warn',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (chunk: Buffer) => (prometheusLog += chunk));
    prometheus.stderr!.on('data', (chunk: Buffer) => (prometheusLog += chunk));
    api = `http://127.0.0.1:${prometheusPort}`;
    await poll('ready Prometheus', async () => {
      assert.equal(prometheus.exitCode, null, `prometheus exited:\n${prometheusLog}`);
      return (await fetch(`${api}/-/ready`)).ok || undefined;
    });
  });

  after(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    await h?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('while the scripts answer, Prometheus scrapes them up and no alert is pending or firing', async () => {
    const upSince = await poll('scrape with both script processes up', async () => {
      const data = await get<{ result: Array<{ value: [number, string] }> }>('/api/v1/query?query=extauth_script_processes_up');
      return data.result[0]?.value[1] === '2' ? data.result[0].value[0] : undefined;
    });
    // An evaluation of the alerting rules that saw that sample.
    await poll('rule evaluation after the scrape', async () => {
      const { groups } = await get<{ groups: Array<{ name: string; lastEvaluation: string }> }>('/api/v1/rules');
      const alerting = groups.find((g) => g.name === 'extauth-component.alerts');
      return alerting && Date.parse(alerting.lastEvaluation) / 1000 > upSince ? true : undefined;
    });
    assert.deepEqual(await alerts(), [], 'no alert while everything works');
  });

  test('when the scripts die and cannot start again, ExtauthScriptsDown fires', async () => {
    writeFileSync(path.join(dir, 'broken'), '');
    const scripts = childrenOf(h.component.pid!);
    assert.equal(scripts.length, 2, 'two script processes');
    for (const pid of scripts) process.kill(pid, 'SIGKILL');
    const firing = await poll('firing ExtauthScriptsDown', async () =>
      (await alerts()).find((a) => a.labels.alertname === 'ExtauthScriptsDown' && a.state === 'firing'),
    );
    assert.equal(firing.labels.job, 'extauth-component');
    assert.equal(firing.labels.severity, 'critical');
    const restarts = await get<{ result: Array<{ value: [number, string] }> }>('/api/v1/query?query=sum(extauth_script_restarts_total)');
    assert.ok(Number(restarts.result[0]?.value[1]) >= 2, 'Prometheus saw the component restart both');
  });
});
