// Re-exports support/ports.ts, which the demo and the benchmarks share.
export * from '../../support/ports.js';
