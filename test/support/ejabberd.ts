// Re-exports support/ejabberd.ts, which the demo and the benchmarks share.
export * from '../../support/ejabberd.js';
