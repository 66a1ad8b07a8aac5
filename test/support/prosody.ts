// Re-exports support/prosody.ts, which the demo and the benchmarks share.
export * from '../../support/prosody.js';
