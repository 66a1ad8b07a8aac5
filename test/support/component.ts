// Re-exports support/component-process.ts, which the demo and the benchmarks share.
export * from '../../support/component-process.js';
export { sleep } from '../../support/wait.js';
