// The report's charts, as SVG files: Vega-Lite specifications compiled and rendered by `vega` in
// Node (no browser, no canvas). Logins per second against concurrency, and login latency, per
// path, script and server generation.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { pathName, type ServerKind } from './cases.js';
import { type BenchResults, cell } from './results.js';
import { CONCURRENCY, pathsFor } from './cases.js';

export interface Chart {
  file: string;
  title: string;
}

interface Point {
  generation: string;
  script: string;
  path: string;
  c: number;
  rate: number;
  p50: number;
  p99: number;
}

function points(r: BenchResults, server: ServerKind): Point[] {
  const out: Point[] = [];
  for (const g of r.generations.filter((x) => x.server === server))
    for (const path of pathsFor(server).filter((p) => p.mechanism === 'PLAIN'))
      for (const script of path.script ? [path.script] : (['instant', '20ms'] as const))
        for (const c of CONCURRENCY) {
          const x = cell(r, g.label, path, c);
          if (x)
            out.push({
              generation: g.label,
              script: script === 'instant' ? 'instant script' : '20 ms script',
              path: `${pathName(server, path.kind)}${path.kind === 'internal' ? ' (ceiling)' : ''}`,
              c,
              rate: x.rate,
              p50: x.p50Ms,
              p99: x.p99Ms,
            });
        }
  return out;
}

const facet = {
  row: { field: 'script', type: 'nominal', title: null, sort: ['instant script', '20 ms script'] },
  column: { field: 'generation', type: 'nominal', title: null },
} as const;
const color = { field: 'path', type: 'nominal', title: 'path', legend: { orient: 'bottom', columns: 3, labelLimit: 400 } } as const;

function loginsSpec(data: Point[], title: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: data },
    facet,
    spec: {
      width: 220,
      height: 160,
      layer: [{ mark: { type: 'line', point: true } }],
      encoding: {
        x: { field: 'c', type: 'ordinal', title: 'client connections (c)', axis: { labelAngle: 0 } },
        y: { field: 'rate', type: 'quantitative', title: 'logins/s' },
        color,
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

function latencySpec(data: Point[], title: string): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: data },
    transform: [{ fold: ['p50', 'p99'], as: ['quantile', 'ms'] }],
    facet,
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'c', type: 'ordinal', title: 'client connections (c)', axis: { labelAngle: 0 } },
        y: { field: 'ms', type: 'quantitative', title: 'login ms (log)', scale: { type: 'log' } },
        color,
        strokeDash: { field: 'quantile', type: 'nominal', title: 'latency', legend: { orient: 'bottom', symbolType: 'stroke', symbolStrokeWidth: 2 } },
      },
    },
  } as TopLevelSpec;
}

async function render(spec: TopLevelSpec, file: string): Promise<void> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  writeFileSync(file, await view.toSVG());
  view.finalize();
}

/** Writes the charts for the servers measured; returns them (none when nothing was measured). */
export async function writeCharts(r: BenchResults, dir: string): Promise<Chart[]> {
  mkdirSync(dir, { recursive: true });
  const charts: Chart[] = [];
  for (const server of ['prosody', 'ejabberd'] as const) {
    const data = points(r, server);
    if (data.length === 0) continue;
    const name = server === 'prosody' ? 'Prosody' : 'ejabberd';
    const logins = { file: join(dir, `logins-${server}.svg`), title: `${name}: logins per second against concurrency` };
    const latency = { file: join(dir, `latency-${server}.svg`), title: `${name}: login latency p50 (solid) and p99 (dashed)` };
    await render(loginsSpec(data, logins.title), logins.file);
    await render(latencySpec(data, latency.title), latency.file);
    charts.push(logins, latency);
  }
  return charts;
}
