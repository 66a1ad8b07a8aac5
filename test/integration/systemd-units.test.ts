// The systemd units in examples/systemd: the settings the docs rely on are there, and systemd
// itself accepts the files (`systemd-analyze verify`) and rates their hardening
// (`systemd-analyze security --offline`). Without systemd-analyze only the first part runs,
// and with CI=true its absence is a failure.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ROOT } from './harness.js';

const UNITS = path.join(ROOT, 'examples/systemd');
const SERVICE = 'extauth-component.service';
const TEMPLATE = 'extauth-component@.service';
/** systemd-analyze's "OK" band ends at 4.9; the shipped units score well inside it. */
const MAX_EXPOSURE = 2.5;

type Unit = Map<string, string[]>;

/** `Section.Key` → every value it is given, in order. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(eq > 0, `not a key=value line: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    unit.set(key, [...(unit.get(key) ?? []), line.slice(eq + 1)]);
  }
  return unit;
}

function one(unit: Unit, key: string): string | undefined {
  const values = unit.get(key);
  return values?.[values.length - 1];
}

const systemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

for (const file of [SERVICE, TEMPLATE]) {
  describe(`examples/systemd/${file}`, () => {
    const text = readFileSync(path.join(UNITS, file), 'utf8');
    const unit = parseUnit(text);

    test('runs the installed command as its own user, with settings from an environment file', () => {
      assert.match(one(unit, 'Service.ExecStart') ?? '', /^\/\S+\/extauth-component$/);
      assert.equal(one(unit, 'Service.User'), 'extauth');
      assert.equal(one(unit, 'Service.Group'), 'extauth');
      const envFile = one(unit, 'Service.EnvironmentFile') ?? '';
      if (file === TEMPLATE) assert.equal(envFile, '/etc/extauth-component/%i.env', 'one environment file per instance');
      else assert.equal(envFile, '/etc/extauth-component/extauth-component.env');
      assert.equal(one(unit, 'Install.WantedBy'), 'multi-user.target');
    });

    test('stops with SIGTERM, reloads with SIGHUP and does not restart on a configuration error', () => {
      assert.equal(one(unit, 'Service.KillSignal'), 'SIGTERM');
      assert.equal(one(unit, 'Service.KillMode'), 'control-group');
      assert.match(one(unit, 'Service.ExecReload') ?? '', /kill -HUP \$MAINPID$/);
      assert.equal(one(unit, 'Service.Restart'), 'on-failure');
      assert.equal(one(unit, 'Service.RestartPreventExitStatus'), '2');
    });

    test('is hardened, and lets scripts write where the example users file lives', () => {
      for (const [key, value] of [
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['PrivateDevices', 'yes'],
        ['RestrictSUIDSGID', 'yes'],
        ['CapabilityBoundingSet', ''],
        ['StateDirectory', 'extauth-component'],
        ['ReadWritePaths', '/var/lib/extauth-component'],
      ] as const) {
        assert.equal(one(unit, `Service.${key}`), value, key);
      }
      assert.equal(one(unit, 'Service.MemoryDenyWriteExecute'), undefined, "Node's JIT needs writable executable memory");
    });

    test('systemd accepts it without a warning', { skip: !systemdAnalyze && process.env.CI !== 'true' && 'systemd-analyze is not installed' }, () => {
      assert.ok(systemdAnalyze, 'systemd-analyze is required with CI=true (Debian package systemd)');
      const dir = mkdtempSync(path.join(tmpdir(), 'extauth-units-'));
      try {
        // verify insists that ExecStart exists; the command is not installed here, node is.
        const name = file === TEMPLATE ? 'extauth-component@auth1.service' : SERVICE;
        const unitPath = path.join(dir, name);
        writeFileSync(unitPath, text.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath}`));
        const verify = spawnSync('systemd-analyze', ['verify', '--man=no', unitPath], { encoding: 'utf8' });
        assert.equal(verify.stderr, '', 'no warning (an unknown or misspelt key would show here)');
        assert.equal(verify.status, 0);

        const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unitPath], { encoding: 'utf8' });
        const exposure = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(security.stdout);
        assert.ok(exposure, `an exposure level in:\n${security.stdout}${security.stderr}`);
        assert.ok(Number(exposure[1]) <= MAX_EXPOSURE, `exposure ${exposure[1]} is at most ${MAX_EXPOSURE}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

test('the instance template differs from the single unit only in what names the instance', () => {
  const single = readFileSync(path.join(UNITS, SERVICE), 'utf8');
  const template = readFileSync(path.join(UNITS, TEMPLATE), 'utf8');
  const settings = (text: string) =>
    text
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map((l) => l.replaceAll('%i', 'NAME').replace('NAME.env', 'extauth-component.env'));
  const differing = settings(template).filter((line, i) => line !== settings(single)[i]);
  assert.deepEqual(
    differing.map((l) => l.split('=')[0]),
    ['Description', 'SyslogIdentifier'],
  );
});
