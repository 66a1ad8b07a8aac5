// ejabberd's ejabberd_service listener with `tls: true` speaks direct TLS: a component connects
// with xmpps://. A throwaway ejabberd (its own small config: no auth shim is needed to prove the
// handshake) with a certificate from a CA made at test time; checked with `check-server`. Once for
// every ejabberd generation installed (23.01, 24.12).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test as nodeTest } from 'node:test';
import { runToExit } from '../integration/harness.js';
import { type EjabberdInstall, ejabberdTestTargets, spawnEjabberdNode } from '../../support/ejabberd.js';
import { canConnect, freePorts, LOOPBACK, randomSecret } from '../../support/ports.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';

const targets = ejabberdTestTargets();

if (targets.missing) describe(`ejabberd: ejabberd_service with tls: true: ${targets.missing}`, { skip: targets.missing }, () => {});
for (const install of targets.installs) directTls(install);

function directTls(install: EjabberdInstall): void {
  // Each title names the ejabberd it ran against.
  const test = (name: string, fn: () => Promise<void>) => nodeTest(`${name} (${install.label})`, fn);

  describe(`${install.label}: ejabberd_service with tls: true`, { timeout: 90_000 }, () => {
    const domain = 'auth.localhost';
    const secret = randomSecret();
    let certs: TestCertificates;
    let dir: string;
    let ejabberd: ChildProcess;
    let output = '';
    let port: number;

    before(async () => {
      certs = makeTestCertificates({ dns: ['localhost'], ip: ['127.0.0.1'] });
      dir = mkdtempSync(join(tmpdir(), 'extauth-ejabberd-tls-'));
      const pem = join(dir, 'server.pem');
      // The chain up to the CA, so that ejabberd can validate (and so use) the certificate.
      writeFileSync(pem, `${certs.cert}${readFileSync(certs.caFile, 'utf8')}${certs.key}`);
      [port] = (await freePorts(1)) as [number];
      writeFileSync(
        join(dir, 'ejabberd.yml'),
        [
          'hosts:',
          '  - "localhost"',
          'loglevel: info',
          'hide_sensitive_log_data: true',
          `certfiles:\n  - ${JSON.stringify(pem)}`,
          'listen:',
          '  -',
          `    port: ${port}`,
          `    ip: "${LOOPBACK}"`,
          '    module: ejabberd_service',
          '    tls: true',
          // Direct TLS on a service listener takes its certificate from here, not from certfiles.
          `    certfile: ${JSON.stringify(pem)}`,
          '    hosts:',
          `      ${JSON.stringify(domain)}:`,
          `        password: ${JSON.stringify(secret)}`,
          's2s_access: none',
          'modules: {}',
          '',
        ].join('\n'),
      );
      ejabberd = spawnEjabberdNode(install, dir);
      ejabberd.stdout!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
      ejabberd.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
      const deadline = Date.now() + 45_000;
      while (!(await canConnect(port))) {
        if (ejabberd.exitCode !== null || Date.now() > deadline) {
          let log = '';
          try {
            log = readFileSync(join(dir, 'log/ejabberd.log'), 'utf8');
          } catch {}
          throw new Error(`ejabberd did not start:\n${output}\n${log.slice(-3000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });

    after(async () => {
      if (ejabberd && ejabberd.exitCode === null) {
        const exited = once(ejabberd, 'exit');
        ejabberd.kill('SIGTERM');
        const timer = setTimeout(() => ejabberd.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      if (dir && !process.env.KEEP_E2E_TMP) rmSync(dir, { recursive: true, force: true });
      certs?.remove();
    });

    const env = (extra: Record<string, string> = {}) => ({ XMPP_SERVICE: `xmpps://localhost:${port}`, XMPP_DOMAIN: domain, XMPP_SECRET: secret, ...extra });

    test('xmpps:// with the CA trusted: the handshake is accepted', async () => {
      const r = await runToExit(env({ NODE_EXTRA_CA_CERTS: certs.caFile }), ['check-server']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `handshake accepted by localhost:${port} as ${domain} (TLS, certificate verified)\n`);
    });

    test('xmpps:// without the CA: refused, with the reason', async () => {
      const r = await runToExit(env(), ['check-server']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /certificate for localhost is not trusted: [A-Z_]+; add its CA to NODE_EXTRA_CA_CERTS/);
    });

    test('a wrong secret over TLS: not-authorized, the secret never printed', async () => {
      const r = await runToExit(env({ NODE_EXTRA_CA_CERTS: certs.caFile, XMPP_SECRET: 'not-the-secret' }), ['check-server']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refused the handshake: XMPP_SECRET is not the secret/);
      assert.ok(!r.stderr.includes('not-the-secret'));
    });

    test('xmpp:// (plain) at the TLS listener says to use xmpps://', async () => {
      const r = await runToExit({ ...env(), XMPP_SERVICE: `xmpp://${LOOPBACK}:${port}` }, ['check-server']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /xmpps:\/\//);
    });
  });
}
