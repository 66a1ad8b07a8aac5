// npm run bench [-- --full] [--no-build] [--no-profile] [--only=component,ops,prosody,ejabberd,memory] [--out=FILE]
//
// Measures the component side by side with its baselines (see BENCHMARKS.md, "How it is
// measured"), prints the tables and writes BENCHMARKS.md. Progress goes to stderr.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { findEjabberd } from '../support/ejabberd.js';
import { findProsody } from '../support/prosody.js';
import { BenchScript } from './bench-script.js';
import { REPO_ROOT_FROM_BENCH as REPO_ROOT } from './child.js';
import { runScenario, type BenchContext, type ScenarioResult } from './component-bench.js';
import { runEjabberdBench } from './ejabberd-bench.js';
import { withKeptSections } from './kept-sections.js';
import { runInFlight, runLongRun } from './long-run.js';
import { runOpsCost } from './ops-cost.js';
import { describeMachine, loadAverage, newest } from './machine.js';
import { FULL, QUICK } from './mode.js';
import { memoryBreakdownInFlight, profileScenario, type ScenarioProfile } from './profile.js';
import { Progress } from './progress.js';
import { runProsodyBench } from './prosody-bench.js';
import { renderConsole, renderMarkdown } from './report.js';
import type { BenchResults, SuiteOutcome } from './results.js';
import { scenarioLabel } from './scenarios.js';
import { checkTargets, scenariosToProfile } from './targets.js';

const SUITES = ['component', 'ops', 'prosody', 'ejabberd', 'memory'] as const;
type Suite = (typeof SUITES)[number];

interface Options {
  full: boolean;
  build: boolean;
  profile: boolean;
  only: Set<Suite>;
  out: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { full: false, build: true, profile: true, only: new Set(SUITES), out: resolve(REPO_ROOT, 'BENCHMARKS.md') };
  for (const arg of argv) {
    if (arg === '--full') options.full = true;
    else if (arg === '--quick') options.full = false;
    else if (arg === '--no-build') options.build = false;
    else if (arg === '--no-profile') options.profile = false;
    else if (arg.startsWith('--only=')) {
      const wanted = arg.slice('--only='.length).split(',');
      const unknown = wanted.filter((s) => !(SUITES as readonly string[]).includes(s));
      if (unknown.length > 0) usage(`unknown suite ${unknown.join(', ')} (suites: ${SUITES.join(', ')})`);
      options.only = new Set(wanted as Suite[]);
    } else if (arg.startsWith('--out=')) options.out = resolve(arg.slice('--out='.length));
    else if (arg === '--help' || arg === '-h') usage();
    else usage(`unknown option ${arg}`);
  }
  return options;
}

function usage(problem?: string): never {
  if (problem) process.stderr.write(`bench: ${problem}\n`);
  process.stderr.write(
    'usage: npm run bench [-- --full] [--no-build] [--no-profile] [--only=component,ops,prosody,ejabberd,memory] [--out=FILE]\n' +
      '  --full        every scenario, 5 runs each (about ten minutes); default: quick mode, 3 runs (about two)\n' +
      '  --no-build    measure dist/ as it is instead of compiling src/ first\n' +
      '  --no-profile  do not profile the component when a target is missed\n',
  );
  process.exit(problem ? 2 : 0);
}

/** Runs a suite; a failure is recorded (and shown) instead of ending the whole benchmark. */
async function attempt<T>(progress: Progress, name: string, run: () => Promise<T>): Promise<SuiteOutcome<T>> {
  try {
    return { ok: await run() };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress.note(`${name} failed: ${message}`);
    return { skipped: `failed: ${message.split('\n')[0]}` };
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const mode = options.full ? FULL : QUICK;
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const progress = new Progress();
  const startedAt = new Date();
  if (options.build) {
    progress.note('building the component (tsc -p tsconfig.json)');
    execFileSync(process.execPath, [resolve(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: REPO_ROOT, stdio: 'inherit' });
  }
  const machine = describeMachine(REPO_ROOT);
  if (Number(machine.loadAverage.split(' ')[0]) > 0.5)
    progress.note(`note: load average ${machine.loadAverage}: other work on this machine will skew the figures`);
  const script = BenchScript.build();
  process.once('exit', () => script.remove()); // also after Ctrl-C
  const ctx: BenchContext = { mode, script, progress };
  const wanted = (suite: Suite) => options.only.has(suite);
  const notSelected = { skipped: 'not selected (--only)' };
  try {
    const scenarios: ScenarioResult[] = [];
    if (wanted('component')) {
      for (const spec of mode.scenarios) {
        const outcome = await attempt(progress, scenarioLabel(spec), () => runScenario(spec, ctx));
        if ('ok' in outcome) scenarios.push(outcome.ok);
      }
    }
    const ops = wanted('ops') ? await attempt(progress, 'ops cost', () => runOpsCost(ctx)) : notSelected;
    const prosody = !wanted('prosody')
      ? notSelected
      : !findProsody()
        ? { skipped: 'prosody is not installed' }
        : await attempt(progress, 'prosody', () => runProsodyBench(ctx));
    const ejabberdInstall = findEjabberd();
    const ejabberd = !wanted('ejabberd')
      ? notSelected
      : 'missing' in ejabberdInstall
        ? { skipped: ejabberdInstall.missing }
        : await attempt(progress, 'ejabberd', () => runEjabberdBench(ctx));
    const longRun = wanted('memory') ? await attempt(progress, 'long run', () => runLongRun(ctx)) : notSelected;
    const inFlight = wanted('memory') ? await attempt(progress, 'in-flight run', () => runInFlight(ctx)) : notSelected;

    const results: BenchResults = {
      mode,
      machine,
      startedAt,
      durationS: 0,
      loadAverageEnd: '',
      rebuiltDuringRun: false,
      command,
      scenarios,
      ops,
      prosody,
      ejabberd,
      longRun,
      inFlight,
      profiles: [],
      memoryBreakdown: null,
    };
    const checks = checkTargets(results);
    const toProfile = scenariosToProfile(checks);
    const inFlightMissed = checks.some((c) => c.id === 'in-flight-rss' && c.met === false);
    if (options.profile && (toProfile.length > 0 || inFlightMissed)) {
      const profileDir = mkdtempSync(join(tmpdir(), 'extauth-bench-profiles-'));
      for (const spec of toProfile) {
        const profile = await attempt(progress, `profiling ${scenarioLabel(spec)}`, () => profileScenario(spec, ctx, profileDir));
        if ('ok' in profile) results.profiles.push(profile.ok);
      }
      if (inFlightMissed) {
        const breakdown = await attempt(progress, 'memory breakdown', () => memoryBreakdownInFlight(ctx, profileDir));
        if ('ok' in breakdown) results.memoryBreakdown = breakdown.ok;
      }
      if (results.profiles.length > 0) progress.note(`profiles: ${results.profiles.map((p: ScenarioProfile) => p.file).join(', ')}`);
    }
    results.durationS = (Date.now() - startedAt.getTime()) / 1000;
    results.loadAverageEnd = loadAverage();
    results.rebuiltDuringRun = newest(resolve(REPO_ROOT, 'dist')) !== machine.builtAt;
    if (results.rebuiltDuringRun) progress.note('warning: dist/ changed during this run; its figures mix two builds');
    progress.endLine();
    // Sections written by other commands (bench/tagged-bench.ts, the chaos figures) stay.
    const previous = existsSync(options.out) ? readFileSync(options.out, 'utf8') : '';
    writeFileSync(options.out, withKeptSections(renderMarkdown(results, checks), previous));
    process.stdout.write(`${renderConsole(results, checks)}\n`);
    progress.note(`wrote ${relative(process.cwd(), options.out) || options.out} (${mode.name} mode, ${Math.round(results.durationS)} s)`);
  } finally {
    script.remove();
  }
}

// Ctrl-C: exit through process.exit so that every child (component, servers, generators) is killed.
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
