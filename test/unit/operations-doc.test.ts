// docs/operations.md cannot drift from the code: its metrics table lists exactly the metrics the
// component registers (name, type, labels, and a meaning that starts with the metric's help
// text), and its /health example has exactly the fields /health answers with.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkHealth } from '../../src/ops/health.js';
import { ComponentMetrics, type ComponentProbe } from '../../src/ops/metrics.js';

const DOC = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/operations.md'), 'utf8');

/** A probe with something in every metric, so that each shows its labels. */
const probe: ComponentProbe = {
  queued: () => 1,
  inFlight: () => 1,
  processesUp: () => 1,
  answering: () => ({ processes: 0, failuresInARow: 4 }),
  restarts: () => new Map([['exited', 1]]),
  connected: () => true,
  reconnects: () => 1,
  strayAnswers: () => 1,
  cache: () => ({ hits: 1, misses: 1, stale: 1, entries: 1 }),
};

interface Row {
  type: string;
  labels: string[];
  meaning: string;
}

/** The rows of the table under "Metrics and health": `name{labels}` → type, labels, meaning. */
function documentedMetrics(): Map<string, Row> {
  const section = DOC.slice(DOC.indexOf('## Metrics and health'));
  const rows = new Map<string, Row>();
  for (const match of section.matchAll(/^\s*\| `(extauth_[a-z_]+)(?:\{([a-z_,]+)\})?` \| (\w+) \| (.+) \|$/gm)) {
    assert.ok(!rows.has(match[1]!), `${match[1]} is documented twice`);
    rows.set(match[1]!, { type: match[3]!, labels: match[2]?.split(',') ?? [], meaning: match[4]! });
  }
  return rows;
}

test('the metrics table lists every extauth_ metric the code registers, with its type, labels and help', async () => {
  const metrics = new ComponentMetrics(probe, { queueLimit: 10 });
  metrics.answered('auth', 'true', 1);
  const registered = (await metrics.registry.getMetricsAsJSON()).filter((m) => m.name.startsWith('extauth_'));
  const documented = documentedMetrics();
  assert.deepEqual([...documented.keys()].sort(), registered.map((m) => m.name).sort(), 'the same metrics in the table and in the code');
  for (const metric of registered) {
    const row = documented.get(metric.name)!;
    assert.equal(row.type, metric.type, `${metric.name}: type`);
    const labels = new Set(metric.values.flatMap((v) => Object.keys(v.labels)).filter((l) => l !== 'le'));
    assert.deepEqual(row.labels.sort(), [...labels].sort(), `${metric.name}: labels`);
    assert.ok(row.meaning.toLowerCase().startsWith(metric.help.toLowerCase()), `${metric.name}: the meaning starts with the help text "${metric.help}"`);
  }
});

test('the /health example has exactly the fields /health answers with', () => {
  const example = /`GET \/health`[\s\S]*?```json\n([\s\S]*?)```/.exec(DOC);
  assert.ok(example, 'a JSON example under GET /health');
  const documented = JSON.parse(example[1]!) as Record<string, unknown>;
  const { body } = checkHealth(probe);
  assert.deepEqual(Object.keys(documented).sort(), Object.keys(body).sort());
  for (const [key, value] of Object.entries(body)) assert.equal(typeof documented[key], typeof value, `${key}: type`);
  // The example is the failing case it describes.
  assert.deepEqual(documented.problems, body.problems);
  assert.equal(documented.status, body.status);
});
