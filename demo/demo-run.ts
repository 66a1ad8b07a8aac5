// What both demos share: printing the transcript, and running one so that everything it
// started is stopped (its temp dirs removed) on success, error or Ctrl-C.

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
