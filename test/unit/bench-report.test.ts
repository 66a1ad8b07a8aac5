// The benchmark report is computed from one run's figures: ratios to the ceiling and to the
// in-server way at the same concurrency, the spread of the rounds, and the README summary put
// between its markers (replacing what was there, never adding a second copy).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FULL, type LoginPath } from '../../bench/cases.js';
import { readmeSummary, renderReport, replaceReadmeSummary } from '../../bench/report.js';
import type { BenchResults, LoginSample } from '../../bench/results.js';

const GEN = 'Prosody 13.0.1';

function sample(path: LoginPath, concurrency: number, round: number, rate: number, failed = 0): LoginSample {
  return {
    generation: GEN,
    server: 'prosody',
    path,
    concurrency,
    round,
    rate,
    p50Ms: 1000 / rate,
    p99Ms: 2000 / rate,
    logins: 100,
    ok: 100 - failed,
    failures: failed ? { 'temporary-auth-failure': failed } : {},
    serverCpu: 0.5,
    componentCpu: Number.NaN,
  };
}

function results(): BenchResults {
  const internal: LoginPath = { kind: 'internal', mechanism: 'PLAIN' };
  const module: LoginPath = { kind: 'in-process', script: '20ms', mechanism: 'PLAIN' };
  const lockstep: LoginPath = { kind: 'lockstep', script: '20ms', mechanism: 'PLAIN' };
  const samples = [1, 8, 32].flatMap((c) => [
    sample(internal, c, 1, 400),
    sample(internal, c, 2, 400),
    sample(module, c, 1, 40, c === 32 ? 3 : 0),
    sample(module, c, 2, 50),
    sample(lockstep, c, 1, 300),
    sample(lockstep, c, 2, 340),
  ]);
  return {
    mode: 'full',
    size: FULL,
    command: 'npm run bench -- --full',
    startedAt: '2026-12-04T16:35:00.000Z',
    durationS: 900,
    machine: {
      cpuModel: 'Test CPU',
      cores: 2,
      memoryGiB: 8,
      node: 'v20',
      os: 'Linux',
      kernel: '6',
      loadAverage: '0.1 0.1 0.1',
      revision: 'abc1234',
      build: 'fresh',
      builtAt: 0,
    },
    loadAverageEnd: '2.0 1.0 0.5',
    generations: [{ label: GEN, server: 'prosody' }],
    skipped: [],
    inProcessModule: 'test',
    samples,
    component: { skipped: 'not selected' },
    bcrypt: { skipped: 'not measured' },
  };
}

test('each row carries the median of its rounds, their spread and the ratios to the ceiling and to the module', () => {
  const report = renderReport(results(), []);
  const row = report.split('\n').find((line) => line.startsWith('| component lockstep ×8, 20 ms | 32 |'));
  assert.ok(row, report);
  const cells = row.split('|').map((c) => c.trim());
  assert.equal(cells[3], '**320**');
  assert.equal(cells[4], '300–340');
  assert.equal(cells[6], '0.80×'); // 320 / 400
  assert.equal(cells[7], '7.11×'); // 320 / 45
});

test('refused valid logins are counted per row and by condition', () => {
  const report = renderReport(results(), []);
  assert.match(report, /\| mod_auth_external_insecure, 20 ms \| 32 \|.*\| \*\*3\*\* of 200 \|/);
  assert.match(report, /mod_auth_external_insecure, 20 ms: 3× temporary-auth-failure/);
});

test('the README summary replaces the text between its markers and nothing else', () => {
  const summary = readmeSummary(results(), 'docs/bench');
  const start = '<!-- bench-summary: written by `npm run bench -- --full`; edits are lost -->';
  const readme = `# X\n\n## Performance\n\n${start}\nold figures\n<!-- /bench-summary -->\n\n## Next\n`;
  const once = replaceReadmeSummary(readme, summary);
  assert.equal(replaceReadmeSummary(once, summary), once);
  assert.ok(!once.includes('old figures'));
  assert.ok(once.includes('![logins per second against concurrency, Prosody](docs/bench/logins-prosody.svg)'));
  assert.ok(once.endsWith('<!-- /bench-summary -->\n\n## Next\n'));
  assert.match(once, /0\.80× the server's own ceiling/);
});

test('a SCRAM row sits right below the PLAIN row it is compared with, and the ratio to PLAIN is said', () => {
  const r = results();
  const plain: LoginPath = { kind: 'lockstep', script: 'instant', mechanism: 'PLAIN' };
  const scram: LoginPath = { ...plain, mechanism: 'SCRAM-SHA-256' };
  r.samples.push(sample(plain, 32, 1, 500), sample(scram, 32, 1, 400));
  const report = renderReport(r, []);
  const rows = report.split('\n').filter((line) => line.startsWith('| component lockstep ×8, instant'));
  assert.deepEqual(
    rows.map((line) => line.split('|')[1]!.trim()),
    ['component lockstep ×8, instant', 'component lockstep ×8, instant, SCRAM-SHA-256'],
  );
  assert.match(report, /SCRAM-SHA-256 with credentials fetched through the component .*: 400 logins\/s, 0\.80× PLAIN on the same path \(500\/s\)/);
});

test('the old parser, measured in the same run, gets its own rows with the ratio of now to then, and a finding', () => {
  const r = results();
  const hostile = (behindMs: number) => ({ label: '60,000 attributes', bytes: 720_000, aloneMs: [1], behindMs: [behindMs], failures: 0 });
  r.component = {
    roundTrip: [{ p50Ms: 0.2, p99Ms: 1, rate: 5000 }],
    steady: [{ rate: 50_000, cpuUsPerRequest: 20, cpu: 1 }],
    hostile: [hostile(160)],
    baseline: { label: 'hand-written parser', source: 'commit abc', steady: [{ rate: 60_000, cpuUsPerRequest: 8, cpu: 0.5 }], hostile: [hostile(13_000)] },
  };
  const report = renderReport(r, []);
  assert.match(report, /\| steady load: IQs\/s, component CPU per IQ \| 60,000\/s, 8\.0 µs\/IQ \| CPU 2\.50× \|/);
  assert.match(report, /\| one login alone \/ behind one stanza of 60,000 attributes \(720 kB\) .*\| 1\.00 \/ \*\*13,000\*\* ms \| 0\.012× \|/);
  assert.match(
    report,
    /a login waits 160 ms with the saxes stream parser, against 13,000 ms with the old hand-written one in this run \(0\.012×\); .*20\.0 µs against 8\.0 µs \(2\.50×\)/,
  );
  r.component.baseline = { skipped: 'no history' };
  assert.match(renderReport(r, []), /The old hand-written stream parser was not measured in this run: no history\./);
});
