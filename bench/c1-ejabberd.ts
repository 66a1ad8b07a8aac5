// Investigation tool: one login at a time against ejabberd's native extauth and against the shim
// + component, both servers running side by side, alternating batches. Prints per case the
// median over batches of the p50 login time and ejabberd's CPU per login (all VM threads,
// schedstat; includes the schedulers' busy-waiting).
//
//   npx tsx bench/c1-ejabberd.ts [batches=15] [logins=100] [connections=1]
//
// With more than one connection, that many clients log in concurrently (throughput, not latency).
import { randomUUID } from 'node:crypto';
import { ComponentProcess } from '../support/component-process.js';
import { ejabberdInstalls, EjabberdServer } from '../support/ejabberd.js';
import { saslPlainLogin } from '../support/xmpp-client.js';
import { BenchScript } from './bench-script.js';
import { findPid, threadsCpuMs as cpuTimeMs } from './proc-stats.js';

const [batchesArg, loginsArg, connectionsArg] = process.argv.slice(2);
const CONNECTIONS = Number(connectionsArg ?? 1);
const BATCHES = Number(batchesArg ?? 15);
const LOGINS = Number(loginsArg ?? 100);
const wanted = process.env.EXTAUTH_BENCH_EJABBERD;
const install = wanted ? ejabberdInstalls().find((i) => i.version.startsWith(wanted)) : ejabberdInstalls().at(-1);
if (!install) throw new Error('no ejabberd');

interface Case {
  name: string;
  server: EjabberdServer;
  component?: ComponentProcess;
  pid: number;
  p50: number[];
  rate: number[];
  cpu: number[];
  compCpu: number[];
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const q = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(p * (xs.length - 1))]!;

const script = BenchScript.build();
const cases: Case[] = [];
async function batch(c: Case, n: number): Promise<void> {
  const lat: number[] = [];
  const cpu0 = cpuTimeMs(c.pid);
  const comp0 = c.component ? cpuTimeMs(c.component.pid!) : 0;
  let next = 0;
  const started = performance.now();
  const client = async () => {
    while (next < n) {
      const user = `u${next++ % 64}`;
      const r = await saslPlainLogin({ host: c.server.host, port: c.server.c2sPort, domain: c.server.vhost, username: user, password: `pw-${user}` });
      if (!r.ok) throw new Error(`${c.name}: login failed: ${r.condition}`);
      lat.push(r.elapsedMs);
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, client));
  c.rate.push((n * 1000) / (performance.now() - started));
  c.p50.push(median(lat));
  c.cpu.push((cpuTimeMs(c.pid) - cpu0) / n);
  if (c.component) c.compCpu.push((cpuTimeMs(c.component.pid!) - comp0) / n);
}
try {
  const native = await EjabberdServer.start({
    install,
    authMethod: 'external',
    extauthProgram: script.command('ejabberd', 0).line,
    extraConfig: ['host_config:', '  localhost:', '    extauth_pool_size: 2'].join('\n'),
    label: 'native',
  });
  cases.push({ name: 'native extauth ×2', server: native, pid: findPid(native.dir)!, p50: [], rate: [], cpu: [], compCpu: [] });
  const secret = randomUUID();
  const server = await EjabberdServer.start({
    install,
    shim: { component: 'auth.localhost', timeout: 5 },
    service: { hosts: { 'auth.localhost': secret } },
    label: 'shim',
  });
  const component = await ComponentProcess.start({
    service: server.serviceUri,
    domain: 'auth.localhost',
    secret,
    protocol: 'ejabberd',
    command: script.command('ejabberd', 0).line,
    env: { EXTERNAL_AUTH_PROCESSES: '2', EXTERNAL_AUTH_BLOCKING: 'true' },
  });
  cases.push({ name: 'shim + component ×2', server, component, pid: findPid(server.dir)!, p50: [], rate: [], cpu: [], compCpu: [] });
  for (const c of cases) await batch(c, 100);
  for (const c of cases) {
    c.p50.length = 0;
    c.rate.length = 0;
    c.cpu.length = 0;
    c.compCpu.length = 0;
  }
  for (let b = 0; b < BATCHES; b++) {
    for (const c of b % 2 ? [...cases].reverse() : cases) await batch(c, LOGINS);
    process.stderr.write(`batch ${b + 1}/${BATCHES}\n`);
  }
  console.log(`${install.label}, ${BATCHES} batches × ${LOGINS} logins, ${CONNECTIONS === 1 ? 'one at a time' : `${CONNECTIONS} connections`}`);
  for (const c of cases) {
    const ratios = c.p50.map((p, i) => cases[0]!.p50[i]! / p);
    console.log(
      `${c.name.padEnd(24)} p50 ${median(c.p50).toFixed(3)} ms [${q(c.p50, 0.25).toFixed(3)}–${q(c.p50, 0.75).toFixed(3)}]` +
        `  ${median(c.rate).toFixed(0)} logins/s, ratio ${(median(c.rate) / median(cases[0]!.rate)).toFixed(2)}; p50 ratio per batch ${median(ratios).toFixed(2)} [${q(ratios, 0.25).toFixed(2)}–${q(ratios, 0.75).toFixed(2)}]` +
        `  ejabberd CPU/login ${median(c.cpu).toFixed(3)} ms [${q(c.cpu, 0.25).toFixed(3)}–${q(c.cpu, 0.75).toFixed(3)}]` +
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
