// Prosody's direct-TLS port (mod_net_multiplex's multiplex_ssl service, `ssl_ports`) routes a
// stream by its first bytes; mod_component registers a pattern for jabber:component:accept, so
// a component can connect over TLS with xmpps://. Checked here with `check-server` against a
// throwaway Prosody whose certificate comes from a CA made at test time. Once for every Prosody
// generation installed (0.12, 13).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { runToExit } from '../integration/harness.js';
import { canConnect, freePorts, LOOPBACK, randomSecret } from '../../support/ports.js';
import { type ProsodyInstall, prosodyTestTargets } from '../../support/prosody.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';

const targets = prosodyTestTargets();

if (targets.missing) describe(`Prosody: components over its direct TLS port: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) directTls(install);

function directTls(install: ProsodyInstall): void {
  // Each title names the Prosody it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: components over its direct TLS port`, { timeout: 60_000 }, () => {
    const domain = 'auth.localhost';
    const secret = randomSecret();
    let certs: TestCertificates;
    let dir: string;
    let prosody: ChildProcess;
    let ports: { component: number; tls: number; c2s: number };

    before(async () => {
      certs = makeTestCertificates({ dns: ['localhost'], ip: ['127.0.0.1'] });
      dir = mkdtempSync(join(tmpdir(), 'extauth-prosody-tls-'));
      mkdirSync(join(dir, 'certs'));
      const [component, tls, c2s] = await freePorts(3);
      ports = { component: component!, tls: tls!, c2s: c2s! };
      writeFileSync(
        join(dir, 'prosody.cfg.lua'),
        [
          process.getuid?.() === 0 ? 'run_as_root = true' : '',
          `pidfile = "${dir}/prosody.pid"`,
          `data_path = "${dir}/data"`,
          `certificates = "${dir}/certs"`,
          `log = { { levels = { min = "debug" }, to = "file", filename = "${dir}/prosody.log" } }`,
          `interfaces = { "${LOOPBACK}" }`,
          `c2s_ports = { ${ports.c2s} }`,
          'c2s_require_encryption = false',
          's2s_ports = { }',
          'http_ports = { }',
          'https_ports = { }',
          `component_interfaces = { "${LOOPBACK}" }`,
          `component_ports = { ${ports.component} }`,
          // The direct TLS port; its certificate is the global ssl one.
          `ssl_interfaces = { "${LOOPBACK}" }`,
          `ssl_ports = { ${ports.tls} }`,
          `ssl = { certificate = "${certs.certFile}", key = "${certs.keyFile}" }`,
          'modules_enabled = { "net_multiplex" }',
          'modules_disabled = { "s2s" }',
          'VirtualHost "localhost"',
          `Component "${domain}"`,
          `  component_secret = "${secret}"`,
          '',
        ].join('\n'),
      );
      prosody = spawn(install.executable, ['--config', join(dir, 'prosody.cfg.lua'), '-F'], { cwd: dir, stdio: 'ignore' });
      const deadline = Date.now() + 30_000;
      while (!(await canConnect(ports.tls)) || !(await canConnect(ports.component))) {
        if (prosody.exitCode !== null || Date.now() > deadline)
          throw new Error(`prosody did not start:\n${readFileSync(join(dir, 'prosody.log'), 'utf8').slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    after(async () => {
      if (prosody && prosody.exitCode === null) {
        prosody.kill('SIGTERM');
        await once(prosody, 'exit');
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      certs?.remove();
    });

    const env = (service: string, extra: Record<string, string> = {}) => ({ XMPP_SERVICE: service, XMPP_DOMAIN: domain, XMPP_SECRET: secret, ...extra });

    test('xmpps:// to the direct TLS port: the handshake is accepted when the CA is trusted', async () => {
      const r = await runToExit(env(`xmpps://localhost:${ports.tls}`, { NODE_EXTRA_CA_CERTS: certs.caFile }), ['check-server']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `handshake accepted by localhost:${ports.tls} as ${domain} (TLS, certificate verified)\n`);
    });

    test('xmpps:// without the CA: refused, with the reason', async () => {
      const r = await runToExit(env(`xmpps://localhost:${ports.tls}`), ['check-server']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /certificate for localhost is not trusted: [A-Z_]+; add its CA to NODE_EXTRA_CA_CERTS/);
    });

    test('the reasons Prosody gives, in words: unknown domain, wrong secret, client port', async () => {
      const unknown = await runToExit({ ...env(`xmpp://${LOOPBACK}:${ports.component}`), XMPP_DOMAIN: 'nope.localhost' }, ['check-server']);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /does not know XMPP_DOMAIN 'nope\.localhost' as a component/);
      const wrong = await runToExit({ ...env(`xmpp://${LOOPBACK}:${ports.component}`), XMPP_SECRET: 'not-the-secret' }, ['check-server']);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /refused the handshake: XMPP_SECRET is not the secret/);
      assert.ok(!wrong.stderr.includes('not-the-secret'));
      const client = await runToExit(env(`xmpp://${LOOPBACK}:${ports.c2s}`), ['check-server']);
      assert.equal(client.code, 1);
      assert.match(client.stderr, /is not a component port: it speaks jabber:client/);
    });
  });
}
