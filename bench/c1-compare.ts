// Investigation tool: one login at a time against several Prosody servers running side by side
// (the shim, variants of it, internal_plain), alternating batches so that the machine's load
// hits every case alike. Prints, per case, the median over batches of the p50 login time and
// Prosody's CPU per login.
//
//   npx tsx bench/c1-compare.ts [batches=15] [logins=100] [shimdir ...]
//
// Each extra argument is a directory holding a variant mod_auth_external_component.lua.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { prosodyInstalls, ProsodyServer, startComponentFor } from '../support/prosody.js';
import type { ComponentProcess } from '../support/component-process.js';
import { saslPlainLogin } from '../support/xmpp-client.js';
import { BenchScript } from './bench-script.js';
import { findPid, threadsCpuMs as cpuTimeMs } from './proc-stats.js';

const [batchesArg, loginsArg, ...variants] = process.argv.slice(2);
const BATCHES = Number(batchesArg ?? 15);
const LOGINS = Number(loginsArg ?? 100);
const wanted = process.env.EXTAUTH_BENCH_PROSODY;
const installs = prosodyInstalls();
const install = wanted ? installs.find((i) => i.version.startsWith(wanted)) : installs.at(-1);
if (!install) throw new Error('no prosody');

interface Case {
  name: string;
  server: ProsodyServer;
  component?: ComponentProcess;
  pid: number;
  p50: number[];
  cpu: number[];
  compCpu: number[];
}

const script = BenchScript.build();
const cases: Case[] = [];

async function shimCase(name: string, shimDir?: string): Promise<Case> {
  const server = await ProsodyServer.start({ install, logLevel: 'warn', label: name });
  if (shimDir) {
    const file = join(server.dir, 'prosody.cfg.lua');
    writeFileSync(file, readFileSync(file, 'utf8').replace(/^plugin_paths = .*$/m, `plugin_paths = { "${shimDir}" }`));
    await server.restart();
  }
  const component = await startComponentFor(server, {
    domain: Object.keys(server.components)[0]!,
    command: script.command('generic', 0).line,
    env: { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'true' },
  });
  return { name, server, component, pid: findPid(server.dir)!, p50: [], cpu: [], compCpu: [] };
}

async function plainCase(): Promise<Case> {
  const server = await ProsodyServer.start({ install, logLevel: 'warn', label: 'plain' });
  const file = join(server.dir, 'prosody.cfg.lua');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^\s*authentication = "external_component"$/m, '  authentication = "internal_plain"'));
  const accounts = join(server.dir, 'data', 'localhost', 'accounts');
  mkdirSync(accounts, { recursive: true });
  for (let k = 0; k < 64; k++) writeFileSync(join(accounts, `u${k}.dat`), `return {\n\t["password"] = "pw-u${k}";\n};\n`);
  await server.restart();
  return { name: 'internal_plain', server, pid: findPid(server.dir)!, p50: [], cpu: [], compCpu: [] };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;

async function batch(c: Case, n: number): Promise<void> {
  const lat: number[] = [];
  const cpu0 = cpuTimeMs(c.pid);
  const comp0 = c.component ? cpuTimeMs(c.component.pid!) : 0;
  for (let i = 0; i < n; i++) {
    const user = `u${i % 64}`;
    const r = await saslPlainLogin({ host: c.server.host, port: c.server.c2sPort, domain: c.server.vhost, username: user, password: `pw-${user}` });
    if (!r.ok) throw new Error(`${c.name}: login failed: ${r.condition}`);
    lat.push(r.elapsedMs);
  }
  c.p50.push(median(lat));
  c.cpu.push((cpuTimeMs(c.pid) - cpu0) / n);
  if (c.component) c.compCpu.push((cpuTimeMs(c.component.pid!) - comp0) / n);
}

try {
  cases.push(await plainCase());
  cases.push(await shimCase('shim'));
  for (const dir of variants) cases.push(await shimCase(`shim@${dir}`, dir));
  for (const c of cases) await batch(c, 100); // warm-up
  for (const c of cases) {
    c.p50.length = 0;
    c.cpu.length = 0;
    c.compCpu.length = 0;
  }
  for (let b = 0; b < BATCHES; b++) {
    const order = b % 2 ? [...cases].reverse() : cases;
    for (const c of order) await batch(c, LOGINS);
    process.stderr.write(`batch ${b + 1}/${BATCHES}\r`);
  }
  const base = median(cases[0]!.p50);
  console.log(`${install.label}, ${BATCHES} batches × ${LOGINS} logins, one at a time`);
  for (const c of cases) {
    const ratios = c.p50.map((p, i) => cases[0]!.p50[i]! / p);
    console.log(
      `${c.name.padEnd(40)} p50 ${median(c.p50).toFixed(3)} ms [${q(c.p50, 0.25).toFixed(3)}–${q(c.p50, 0.75).toFixed(3)}]` +
        `  rate ratio ${(base / median(c.p50)).toFixed(2)} (per-batch median ${median(ratios).toFixed(2)} [${q(ratios, 0.25).toFixed(2)}–${q(ratios, 0.75).toFixed(2)}])` +
        `  prosody CPU/login ${median(c.cpu).toFixed(3)} ms` +
        (c.component ? `  component CPU/login ${median(c.compCpu).toFixed(3)} ms` : ''),
    );
  }
} finally {
  for (const c of cases) {
    await c.component?.stop();
    await c.server.stop();
  }
  script.remove();
}
