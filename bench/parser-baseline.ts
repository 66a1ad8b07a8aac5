// The component as it was before its stream parser moved to saxes, built from git history, so
// that the bench measures the old parser and the current one in the same run on the same machine
// (a figure from another day says little on a machine shared with other work).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/component-process.js';
import { cacheDir } from './in-process-module.js';

/** The last commit with the hand-written stream parser (its successor replaced it with saxes). */
export const PARSER_BASELINE_REVISION = 'e89f374';
export const PARSER_BASELINE_LABEL = 'hand-written stream parser';

export interface BaselineBuild {
  /** The built entry point, run as `node MAIN` like dist/main.js. */
  readonly main: string;
  /** Where it came from, for the report. */
  readonly source: string;
}

/**
 * Builds the component of `revision` (its src/, tsconfig.json and package.json from `git
 * archive`, compiled with this checkout's TypeScript against this checkout's node_modules: the
 * old code's dependencies are a subset of today's) into the bench cache, once per commit.
 * Without git history (a tarball, a shallow clone), says why instead.
 */
export function buildBaseline(revision = PARSER_BASELINE_REVISION): BaselineBuild | { missing: string } {
  let commit: string;
  try {
    commit = git(['rev-parse', '--verify', '--quiet', `${revision}^{commit}`]).trim();
  } catch {
    return { missing: `commit ${revision} is not in this checkout's history (a shallow clone or a tarball): the old parser cannot be built` };
  }
  const dir = join(cacheDir(), `component-${commit.slice(0, 12)}`);
  const main = join(dir, 'dist', 'main.js');
  const source = `commit ${commit.slice(0, 7)}, the last before saxes, built in ${dir.replace(homedir(), '~')}`;
  if (existsSync(main)) return { main, source };
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  mkdirSync(building, { recursive: true });
  try {
    const archive = execFileSync('git', ['archive', '--format=tar', commit, 'src', 'tsconfig.json', 'package.json'], {
      cwd: REPO_ROOT,
      maxBuffer: 64 * 1024 * 1024,
    });
    execFileSync('tar', ['-x', '-C', building], { input: archive });
    symlinkSync(join(REPO_ROOT, 'node_modules'), join(building, 'node_modules'), 'dir');
    execFileSync(process.execPath, [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: building, stdio: 'pipe' });
    rmSync(dir, { recursive: true, force: true });
    renameSync(building, dir);
  } catch (error) {
    rmSync(building, { recursive: true, force: true });
    const output = (error as { stdout?: Buffer }).stdout?.toString().trim();
    return { missing: `building commit ${commit.slice(0, 7)} failed: ${output || (error as Error).message}` };
  }
  return { main, source };
}

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}
