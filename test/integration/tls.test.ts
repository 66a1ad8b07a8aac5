import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FakeXmppServer } from '../support/fake-server.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';
import { resultOf, SECRET, startHarness } from './harness.js';

describe('xmpps:// direct TLS', () => {
  let certs: TestCertificates;
  before(() => {
    certs = makeTestCertificates({ dns: ['localhost'], ip: ['127.0.0.1'] });
  });
  after(() => certs.remove());

  async function tlsServer(): Promise<FakeXmppServer> {
    const server = new FakeXmppServer(SECRET, { tls: { key: certs.key, cert: certs.cert } });
    await server.listen();
    return server;
  }

  test('a certificate from a CA in NODE_EXTRA_CA_CERTS is accepted: the stream works over TLS', async () => {
    const server = await tlsServer();
    const h = await startHarness({ server, env: { XMPP_SERVICE: `xmpps://localhost:${server.port}`, NODE_EXTRA_CA_CERTS: certs.caFile } });
    try {
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-pw' })), 'true');
      assert.ok(!h.output().includes(SECRET));
    } finally {
      await h.cleanup();
    }
  });

  test('an untrusted certificate is refused before anything is sent, and the log says why and what to do', async () => {
    const server = await tlsServer();
    const h = await startHarness({ server, waitOnline: false, env: { XMPP_SERVICE: `xmpps://localhost:${server.port}` } });
    try {
      const line = await h.waitForLog((l) => l.event === 'link.failed');
      assert.match(String(line.reason), /^certificate for localhost is not trusted: [A-Z_]+; add its CA to NODE_EXTRA_CA_CERTS/);
      assert.equal(server.handshakes.length, 0, 'no handshake (so no secret proof) went to an unverified server');
    } finally {
      await h.cleanup();
    }
  });

  test('a certificate for another name is refused', async () => {
    const other = makeTestCertificates({ dns: ['xmpp.example.org'] });
    const server = new FakeXmppServer(SECRET, { tls: { key: other.key, cert: other.cert } });
    await server.listen();
    // Trusts the issuing CA, but the certificate does not name 'localhost'.
    const h = await startHarness({ server, waitOnline: false, env: { XMPP_SERVICE: `xmpps://localhost:${server.port}`, NODE_EXTRA_CA_CERTS: other.caFile } });
    try {
      const line = await h.waitForLog((l) => l.event === 'link.failed');
      assert.match(String(line.reason), /^certificate for localhost does not name localhost/);
      assert.equal(server.handshakes.length, 0);
    } finally {
      await h.cleanup();
      other.remove();
    }
  });

  test('xmpp:// pointed at a TLS port says it did not get an XMPP stream and suggests xmpps://', async () => {
    const server = await tlsServer();
    const h = await startHarness({ server, waitOnline: false, env: { XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` } });
    try {
      const line = await h.waitForLog((l) => l.event === 'link.failed', 20_000);
      assert.match(String(line.reason), /xmpps:\/\//);
    } finally {
      await h.cleanup();
    }
  });
});
