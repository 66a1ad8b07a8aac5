// What both demos share: choosing the Prosody generation, printing the transcript, and running
// one so that everything it started is stopped (its temp dirs removed) on success, error or Ctrl-C.
import { parseArgs } from 'node:util';
import type { ProsodyInstall } from '../support/prosody.js';

export const say = (text = ''): void => console.log(text);
export const ms = (n: number): string => `${Math.round(n)} ms`;

/** A component secret for a throwaway server. */
export function secret(): string {
  return `demo-${Math.random().toString(36).slice(2)}`;
}

export function runDemo(main: () => Promise<void>, cleanUp: () => Promise<void>): void {
  let interrupted = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      console.log(`\n${signal}: cleaning up`);
      void cleanUp().finally(() => process.exit(130));
    });
  }
  main()
    .catch((error: unknown) => {
      if (interrupted) return; // Ctrl-C also stops the children: their failure is no news
      console.error(`\nThe demo failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    })
    .finally(() => cleanUp());
}

/**
 * The Prosody a demo runs: `--prosody 0.12` or `--prosody 13` (a version or its prefix) picks
 * one of `installs` (oldest first), none the newest. Throws, naming what is installed, when the
 * arguments are wrong or the asked-for generation is not there; undefined when none is installed.
 */
export function pickProsody(args: readonly string[], installs: readonly ProsodyInstall[]): { install: ProsodyInstall; why: string } | undefined {
  const { values } = parseArgs({ args: [...args], options: { prosody: { type: 'string' } }, strict: true });
  const found = installs.map((i) => i.version).join(', ');
  const wanted = values.prosody;
  if (wanted === undefined) {
    const newest = installs.at(-1);
    return newest && { install: newest, why: installs.length > 1 ? `the newest found (${found}); --prosody VERSION picks another` : 'the only one found' };
  }
  if (!/^\d+(\.\d+)*$/.test(wanted)) throw new Error(`--prosody ${wanted}: give a version such as 0.12 or 13`);
  const install = installs.filter((i) => i.version === wanted || i.version.startsWith(`${wanted}.`)).at(-1);
  if (!install) throw new Error(`--prosody ${wanted}: no such Prosody here (found: ${found || 'none'}; .ci/run installs 0.12 and 13)`);
  return { install, why: `asked for with --prosody ${wanted}` };
}
