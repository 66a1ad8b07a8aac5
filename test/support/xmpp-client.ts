// Re-exports support/xmpp-client.ts, which the demo and the benchmarks share.
export * from '../../support/xmpp-client.js';
