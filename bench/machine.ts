// The machine a benchmark ran on, for the report.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  kernel: string;
  /** /proc/loadavg when the run started: other work on the machine skews every figure. */
  loadAverage: string;
  /** The commit, and "dirty" when the work tree differs from it. */
  revision: string;
  /** Whether dist/ (what is measured) is at least as new as every file in src/. */
  build: string;
  /** The newest modification time in dist/ when the run started (to notice a rebuild during it). */
  builtAt: number;
}

export function describeMachine(repoRoot: string): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  return {
    cpuModel: model,
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: debianVersion() || os.type(),
    kernel: `${os.type()} ${os.release()}`,
    loadAverage: loadAverage(),
    revision: gitRevision(repoRoot),
    build: buildFreshness(repoRoot),
    builtAt: newest(join(repoRoot, 'dist')),
  };
}

/** The 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function debianVersion(): string {
  try {
    return `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}`;
  } catch {
    return '';
  }
}

function gitRevision(repoRoot: string): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    // BENCHMARKS.md and the charts are what a run writes: a tree dirty only there is clean.
    const changed = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!BENCHMARKS.md', ':!docs/bench', ':!README.md'], {
      cwd: repoRoot,
      encoding: 'utf8',
    })
      .split('\n')
      .filter(Boolean)
      .map((line) => line.slice(3));
    return changed.length > 0 ? `${head} (dirty: ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ', …' : ''})` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function buildFreshness(repoRoot: string): string {
  const built = newest(join(repoRoot, 'dist'));
  const source = newest(join(repoRoot, 'src'));
  if (built === 0) return 'dist/ is missing';
  const when = new Date(built).toISOString().slice(0, 19).replace('T', ' ');
  return source > built
    ? `dist/ built ${when} UTC, OLDER than the newest file in src/ (run without --no-build)`
    : `dist/ built ${when} UTC from the current src/`;
}

/** The newest modification time (ms) of any file under dir; 0 if none. */
export function newest(dir: string): number {
  let latest = 0;
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
      if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
    }
  } catch {
    return 0;
  }
  return latest;
}
