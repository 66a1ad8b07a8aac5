// examples/prometheus: promtool accepts the rules and their unit tests pass (one case per alert,
// firing and not firing), and every metric the rules read is one the component exports.
// promtool comes with Debian's `prometheus` package; without it only the last part runs, and with
// CI=true its absence is a failure.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ComponentMetrics, type ComponentProbe } from '../../src/ops/metrics.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/prometheus');
const RULES = 'extauth-component.rules.yml';
const TESTS = 'extauth-component.test.yml';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const skip = !promtool && process.env.CI !== 'true' && 'promtool is not installed (Debian package prometheus)';

function promtoolRun(...args: string[]): string {
  const run = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.error, undefined, `promtool: ${run.error?.message}`);
  assert.equal(run.status, 0, `promtool ${args.join(' ')}:\n${run.stdout}${run.stderr}`);
  return run.stdout + run.stderr;
}

test('promtool check rules accepts the shipped rules', { skip }, () => {
  assert.match(promtoolRun('check', 'rules', RULES), /SUCCESS: \d+ rules found/);
});

test('promtool test rules: every alert fires for the bad target only, and only after its `for:`', { skip }, () => {
  const alerts = [...readFileSync(path.join(DIR, RULES), 'utf8').matchAll(/^\s*- alert: (\S+)$/gm)].map((m) => m[1]!);
  const cases = [...readFileSync(path.join(DIR, TESTS), 'utf8').matchAll(/^\s*alertname: (\S+)$/gm)].map((m) => m[1]!);
  assert.ok(alerts.length >= 7);
  for (const alert of alerts) assert.equal(cases.filter((c) => c === alert).length, 2, `${alert}: one evaluation where it does not fire, one where it does`);
  assert.match(promtoolRun('test', 'rules', TESTS), /SUCCESS/);
});

test('the rules read only metrics the component exports', async () => {
  const idle: ComponentProbe = {
    queued: () => 0,
    inFlight: () => 0,
    processesUp: () => 0,
    answering: () => ({ processes: 0, failuresInARow: 0 }),
    restarts: () => new Map(),
    connected: () => false,
    reconnects: () => 0,
    cache: () => null,
  };
  const exported = new Set((await new ComponentMetrics(idle, { queueLimit: 1 }).registry.getMetricsAsJSON()).map((m) => m.name));
  const read = new Set(
    [...readFileSync(path.join(DIR, RULES), 'utf8').matchAll(/(?<![:\w])(extauth_[a-z_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')),
  );
  assert.ok(read.size >= 8);
  for (const name of read) assert.ok(exported.has(name), `${name} is read by a rule but not exported`);
});
