// Summarises a V8 CPU profile (.cpuprofile JSON, from --cpu-prof or the inspector): the
// functions with the most self time, and self time per module (a package, a dist/ file, a
// node: internal). Also a command:
//
//   npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP]
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    hitCount?: number;
    children?: number[];
  }>;
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileRow {
  name: string;
  /** module:line, or a V8 pseudo-frame's name. */
  location: string;
  module: string;
  selfMs: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  /** Profiled wall time. */
  totalMs: number;
  /** Time the thread was busy: not "(idle)". */
  busyMs: number;
  gcMs: number;
  top: ProfileRow[];
  byModule: Array<{ module: string; selfMs: number; share: number }>;
}

export function summariseProfile(profile: CpuProfile, top = 20): ProfileSummary {
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute the gap after a sample to it.
  for (let i = 0; i < samples.length; i++) {
    const gap = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, gap));
  }
  const rows = new Map<string, ProfileRow>();
  const modules = new Map<string, number>();
  let idleUs = 0;
  let gcUs = 0;
  let totalUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    if (functionName === '(garbage collector)') gcUs += us;
    const module = moduleOf(url, functionName);
    const name = functionName || '(anonymous)';
    const location = url ? `${module === shortUrl(url) ? module : shortUrl(url)}:${lineNumber + 1}` : name;
    const key = `${name}@${location}`;
    const row = rows.get(key) ?? { name, location, module, selfMs: 0, share: 0 };
    row.selfMs += us / 1000;
    rows.set(key, row);
    modules.set(module, (modules.get(module) ?? 0) + us / 1000);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const ranked = [...rows.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, top);
  for (const row of ranked) row.share = row.selfMs / busyMs;
  return {
    totalMs: totalUs / 1000,
    busyMs,
    gcMs: gcUs / 1000,
    top: ranked,
    byModule: [...modules.entries()]
      .map(([module, selfMs]) => ({ module, selfMs, share: selfMs / busyMs }))
      .sort((a, b) => b.selfMs - a.selfMs)
      .slice(0, top),
  };
}

/** A package name, a path under dist/ or src/, a node: module, or the V8 pseudo-frame. */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (packageMatch) return packageMatch[1]!;
  return shortUrl(url);
}

function shortUrl(url: string): string {
  const packageMatch = /node_modules\/(.+)$/.exec(url);
  if (packageMatch) return packageMatch[1]!;
  const project = /\/((?:dist|src|bench)\/.+)$/.exec(url);
  if (project) return project[1]!;
  return url.replace(/^file:\/\//, '');
}

/** Markdown tables: the top functions by self time, then self time per module. */
export function formatProfileSummary(summary: ProfileSummary, rows = 15): string {
  const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
  const lines = [
    `Profiled ${fmt(summary.totalMs)} ms, busy ${fmt(summary.busyMs)} ms (${pct(summary.busyMs / summary.totalMs)}), of which GC ${fmt(summary.gcMs)} ms (${pct(summary.gcMs / summary.busyMs)}).`,
    '',
    '| self ms | % of busy | function | where |',
    '|---:|---:|---|---|',
    ...summary.top.slice(0, rows).map((r) => `| ${fmt(r.selfMs)} | ${pct(r.share)} | \`${r.name}\` | ${r.location} |`),
    '',
    '| module | self ms | % of busy |',
    '|---|---:|---:|',
    ...summary.byModule.slice(0, rows).map((m) => `| ${m.module} | ${fmt(m.selfMs)} | ${pct(m.share)} |`),
  ];
  return lines.join('\n');
}

function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: npx tsx bench/profile-summary.ts FILE.cpuprofile [TOP]\n');
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const limit = Number(top ?? 20);
  process.stdout.write(`${formatProfileSummary(summariseProfile(profile, limit), limit)}\n`);
}
