import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCertificates {
  readonly dir: string;
  /** PEM file of the CA: what NODE_EXTRA_CA_CERTS points at to trust the server. */
  readonly caFile: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly key: string;
  readonly cert: string;
  remove(): void;
}

/**
 * A throwaway CA and a server certificate it signed, made with the openssl CLI at test time
 * (nothing secret is committed): P-256 keys, valid for two days, for the given DNS names and IPs.
 */
export function makeTestCertificates(names: { dns?: readonly string[]; ip?: readonly string[] } = { dns: ['localhost'], ip: ['127.0.0.1'] }): TestCertificates {
  const dir = mkdtempSync(path.join(tmpdir(), 'extauth-ca-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=extauth-component test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${names.dns?.[0] ?? names.ip?.[0] ?? 'localhost'}`);
  const san = [...(names.dns ?? []).map((n) => `DNS:${n}`), ...(names.ip ?? []).map((n) => `IP:${n}`)].join(',');
  writeFileSync(file('ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'ext.cnf',
  );
  return {
    dir,
    caFile: file('ca.pem'),
    keyFile: file('server.key'),
    certFile: file('server.pem'),
    key: readFileSync(file('server.key'), 'utf8'),
    cert: readFileSync(file('server.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
