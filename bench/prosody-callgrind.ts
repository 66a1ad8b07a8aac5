// Investigation tool: Prosody's instructions per login (valgrind's callgrind), one login at a
// time, with internal_plain, with the shim and with variants of the shim. Unlike time, an
// instruction count does not depend on what else the machine is doing. Needs valgrind.
//
//   npx tsx bench/prosody-callgrind.ts [version=newest] [logins=100] [shimdir ...]
//
// Each extra argument is a directory holding a variant mod_auth_external_component.lua.
// Prosody runs under callgrind with instrumentation off (start-up, warm-up logins), on only for
// the measured logins.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prosodyInstalls, ProsodyServer, startComponentFor } from '../support/prosody.js';
import type { ComponentProcess } from '../support/component-process.js';
import { saslPlainLogin } from '../support/xmpp-client.js';
import { BenchScript } from './bench-script.js';
import { findPid } from './proc-stats.js';

const [version, loginsArg, ...variants] = process.argv.slice(2);
const real = version ? prosodyInstalls().find((i) => i.version.startsWith(version)) : prosodyInstalls().at(-1);
if (!real) throw new Error(`no Prosody ${version ?? ''} installed`);
const work = mkdtempSync(join(tmpdir(), 'extauth-callgrind-'));
const dumps = join(work, 'dumps');
mkdirSync(dumps);
const wrapper = join(work, 'prosody');
// The launcher is a Lua script (`#!/usr/bin/env lua5.4`): valgrind runs its interpreter.
const interpreter = /^#!\s*(?:\S*\/env\s+)?(\S+)/.exec(readFileSync(real.executable, 'utf8'))?.[1] ?? 'lua5.4';
writeFileSync(
  wrapper,
  `#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=${dumps}/cg.%p.out ${interpreter} ${real.executable} "$@"\n`,
);
chmodSync(wrapper, 0o755);
const install = { executable: wrapper, version: real.version, label: real.label };
const LOGINS = Number(loginsArg ?? 100);
const script = BenchScript.build();

function irOf(pid: number): number {
  // Dumps (which also zeroes the counters) and reads the totals of the newest dump for this pid.
  execFileSync('callgrind_control', ['-d', String(pid)], { stdio: 'ignore' });
  const files = readdirSync(dumps)
    .filter((f) => f.startsWith(`cg.${pid}.out.`))
    .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  const m = /^totals: (\d+)/m.exec(readFileSync(join(dumps, files.at(-1)!), 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

async function measure(name: string, shimDir: string | undefined, plain: boolean): Promise<void> {
  const server = await ProsodyServer.start({ install, logLevel: 'warn', label: name });
  let component: ComponentProcess | undefined;
  try {
    const file = join(server.dir, 'prosody.cfg.lua');
    let config = readFileSync(file, 'utf8');
    if (shimDir) config = config.replace(/^plugin_paths = .*$/m, `plugin_paths = { "${shimDir}" }`);
    if (plain) {
      config = config.replace(/^\s*authentication = "external_component"$/m, '  authentication = "internal_plain"');
      const accounts = join(server.dir, 'data', 'localhost', 'accounts');
      mkdirSync(accounts, { recursive: true });
      for (let k = 0; k < 64; k++) writeFileSync(join(accounts, `u${k}.dat`), `return {\n\t["password"] = "pw-u${k}";\n};\n`);
    }
    writeFileSync(file, config);
    await server.restart();
    if (!plain) {
      component = await startComponentFor(server, {
        domain: Object.keys(server.components)[0]!,
        command: script.command('generic', 0).line,
        env: { EXTERNAL_AUTH_PROCESSES: '2' },
      });
    }
    const pid = findPid(server.dir)!; // valgrind runs as the wrapper's process
    const login = async (i: number) => {
      const user = `u${i % 64}`;
      const r = await saslPlainLogin({
        host: server.host,
        port: server.c2sPort,
        domain: server.vhost,
        username: user,
        password: `pw-${user}`,
        timeoutMs: 30_000,
      });
      if (!r.ok) throw new Error(`${name}: ${r.condition}`);
    };
    for (let i = 0; i < 30; i++) await login(i); // warm-up
    execFileSync('callgrind_control', ['-i', 'on', String(pid)], { stdio: 'ignore' });
    irOf(pid);
    for (let i = 0; i < LOGINS; i++) await login(i);
    const after = irOf(pid);
    console.log(`${install.label} ${name.padEnd(36)} ${(after / LOGINS / 1000).toFixed(1)}k instructions per login (Prosody, ${LOGINS} logins)`);
  } finally {
    await component?.stop();
    await server.stop();
  }
}

try {
  await measure('internal_plain', undefined, true);
  await measure('shim (worktree)', undefined, false);
  for (const v of variants) await measure(`shim@${v}`, v, false);
} finally {
  script.remove();
  rmSync(work, { recursive: true, force: true });
}
