// The layers docs/design.md names, top to bottom. A module may import from its own layer and
// from the layers below it, never from one above; and nothing may form a cycle.
// `npm run lint` runs this check (depcruise src).
const LAYERS = [
  // The entry: the command line, the wiring, the logger it makes (from the configured level) and
  // the version. Lower layers take a pino Logger as an argument and never import src/log.ts.
  { name: 'entry', path: '^src/(main|app|log|version)\\.ts$' },
  // Operations: the HTTP server, metrics and the check commands, which wire lower layers themselves.
  { name: 'ops', path: '^src/ops/' },
  { name: 'config', path: '^src/config/' },
  { name: 'xmpp', path: '^src/xmpp/' },
  { name: 'cache', path: '^src/cache/' },
  { name: 'pool', path: '^src/pool/' },
  { name: 'worker', path: '^src/worker/' },
  { name: 'codec', path: '^src/codec/' },
  { name: 'core', path: '^src/core/' },
];

const upward = LAYERS.slice(1).map((layer, index) => ({
  name: `${layer.name}-imports-upward`,
  comment: `${layer.name} sits below ${LAYERS.slice(0, index + 1)
    .map((l) => l.name)
    .join(', ')}: it may not import from them (see docs/design.md, "The layers")`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: LAYERS.slice(0, index + 1).map((l) => l.path) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'A cycle ties modules together so that neither can be understood, tested or moved alone',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'outside-the-layers',
      comment: 'Every source file belongs to one of the layers; a new folder needs its place in .dependency-cruiser.cjs and docs/design.md',
      severity: 'error',
      from: { path: '^src/', pathNot: [...LAYERS.map((l) => l.path), '^src/types/'] },
      to: {},
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Type-only imports tie layers together too.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
