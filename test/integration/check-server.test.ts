import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { runCheckServer } from '../../src/ops/check-server.js';
import { FakeXmppServer } from '../support/fake-server.js';
import { makeTestCertificates, type TestCertificates } from '../support/test-ca.js';
import { resultOf, runToExit, SECRET, startHarness } from './harness.js';

async function check(env: Record<string, string>, timeoutMs = 5000): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCheckServer(
    { XMPP_DOMAIN: 'auth.example.com', XMPP_SECRET: SECRET, ...env },
    { out: (l) => out.push(l), err: (l) => err.push(l) },
    timeoutMs,
  );
  return { code, out, err };
}

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('check-server', () => {
  const servers: FakeXmppServer[] = [];
  let certs: TestCertificates;
  before(() => {
    certs = makeTestCertificates();
  });
  after(async () => {
    for (const server of servers) await server.close();
    certs.remove();
  });
  async function fake(
    setup: (server: FakeXmppServer) => void = () => {},
    options: ConstructorParameters<typeof FakeXmppServer>[1] = {},
  ): Promise<FakeXmppServer> {
    const server = new FakeXmppServer(SECRET, options);
    setup(server);
    await server.listen();
    servers.push(server);
    return server;
  }

  test('a good handshake: exit 0 and one line naming the server and the domain', async () => {
    const server = await fake();
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` });
    assert.deepEqual(r, { code: 0, out: [`handshake accepted by 127.0.0.1:${server.port} as auth.example.com`], err: [] });
    assert.equal(server.connections, 1, 'one connection, no retry');
  });

  test('nothing listening: connection refused', async () => {
    const port = await freePort();
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${port}` });
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /connection refused by 127\.0\.0\.1:\d+/);
  });

  test('a wrong secret: not-authorized, and the secret is never printed', async () => {
    const server = await fake();
    const wrong = 'wrong-secret-Xy7';
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}`, XMPP_SECRET: wrong });
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /refused the handshake: XMPP_SECRET is not the secret the server has for 'auth\.example\.com'/);
    assert.ok(![...r.out, ...r.err].join('\n').includes(wrong));
    assert.ok(![...r.out, ...r.err].join('\n').includes(SECRET));
  });

  test('an unknown domain: host-unknown, naming what to declare on the server', async () => {
    const server = await fake((s) => (s.refuseStream = 'host-unknown'));
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` });
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /does not know XMPP_DOMAIN 'auth\.example\.com' as a component: declare it there \(Prosody: Component "auth\.example\.com"/);
    assert.doesNotMatch(r.err.join('\n'), /EPIPE|ECONNRESET/);
  });

  test('a stream opened without an id only to refuse it (as Prosody does): the refusal is the reason', async () => {
    const server = await fake((s) => {
      s.streamHeader = () => `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept'>`;
      s.refuseStream = 'host-unknown';
    });
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` });
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /does not know XMPP_DOMAIN 'auth\.example\.com'/);
  });

  for (const [ns, words] of [
    ['jabber:client', /not a component port: it speaks jabber:client: it is a client port/],
    ['jabber:server', /not a component port: it speaks jabber:server: it is a server-to-server port/],
  ] as const) {
    test(`a port that speaks ${ns}: not a component port (even though it then says host-unknown)`, async () => {
      const server = await fake((s) => {
        s.streamHeader = (id) => `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='${ns}' id='${id}' version='1.0'>`;
        s.refuseStream = 'host-unknown';
      });
      const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` });
      assert.equal(r.code, 1);
      assert.match(r.err.join('\n'), words);
      assert.equal(server.handshakes.length, 0, 'no handshake is offered to a port that is not a component port');
    });
  }

  test('a server that never answers the handshake: a bounded wait, then a timeout', async () => {
    const server = await fake((s) => (s.ignoreHandshake = true));
    const r = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` }, 2000);
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /no handshake reply from 127\.0\.0\.1:\d+ within 2000 ms/);
  });

  test('TLS with an untrusted certificate: refused, with the reason', async () => {
    const server = await fake(() => {}, { tls: { key: certs.key, cert: certs.cert } });
    const r = await check({ XMPP_SERVICE: `xmpps://localhost:${server.port}` });
    assert.equal(r.code, 1);
    assert.match(r.err.join('\n'), /certificate for localhost is not trusted: [A-Z_]+; add its CA to NODE_EXTRA_CA_CERTS/);
  });

  test('from the command line: needs only XMPP_* (no EXTERNAL_AUTH_COMMAND); a configuration error is exit 2', async () => {
    const server = await fake();
    const good = await runToExit(
      { XMPP_SERVICE: `xmpps://localhost:${server.port}`.replace('xmpps', 'xmpp'), XMPP_DOMAIN: 'auth.example.com', XMPP_SECRET: SECRET },
      ['check-server'],
    );
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stdout, `handshake accepted by localhost:${server.port} as auth.example.com\n`);
    const tlsServer = await fake(() => {}, { tls: { key: certs.key, cert: certs.cert } });
    const trusted = await runToExit(
      { XMPP_SERVICE: `xmpps://localhost:${tlsServer.port}`, XMPP_DOMAIN: 'auth.example.com', XMPP_SECRET: SECRET, NODE_EXTRA_CA_CERTS: certs.caFile },
      ['check-server'],
    );
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /\(TLS, certificate verified\)/);
    const bad = await runToExit({ XMPP_SERVICE: 'http://x', XMPP_SECRET: SECRET }, ['check-server']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /XMPP_SERVICE: /);
    assert.match(bad.stderr, /XMPP_DOMAIN: is required/);
    assert.doesNotMatch(bad.stderr, /EXTERNAL_AUTH_COMMAND/);
  });

  test('while the service is connected (the server refuses a second component): exit 3, on stdout, and a wrong secret is still exit 1', async () => {
    const server = await fake((s) => (s.secondComponent = 'refuse'));
    const h = await startHarness({ server });
    try {
      const taken = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}` });
      assert.equal(taken.code, 3);
      assert.deepEqual(taken.err, []);
      assert.match(taken.out.join('\n'), /knows auth\.example\.com, and it is already taken by a connected component \(is the service running\?\)/);
      assert.match(taken.out.join('\n'), /the secret cannot be fully checked while it is connected/);
      const wrong = await check({ XMPP_SERVICE: `xmpp://127.0.0.1:${server.port}`, XMPP_SECRET: 'wrong-secret-Xy7' });
      assert.equal(wrong.code, 1);
      assert.match(wrong.err.join('\n'), /XMPP_SECRET is not the secret/);
      assert.equal(resultOf(await h.ask({ user: 'alice', password: 'good-1' })), 'true', 'the running component was not disturbed');
    } finally {
      await h.cleanup();
    }
  });

  test('the daemon logs the same reasons: an unknown domain is host-unknown, never EPIPE; a client port is not a component port', async () => {
    const unknown = await fake((s) => (s.refuseStream = 'host-unknown'));
    const h = await startHarness({ server: unknown, waitOnline: false });
    try {
      const line = await h.waitForLog((l) => l.event === 'link.failed');
      assert.match(String(line.reason), /does not know XMPP_DOMAIN 'auth\.example\.com'/);
      assert.doesNotMatch(h.output(), /EPIPE/);
    } finally {
      await h.cleanup();
    }
    const client = await fake((s) => {
      s.streamHeader = (id) =>
        `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' id='${id}' version='1.0'>`;
      s.refuseStream = 'host-unknown';
    });
    const h2 = await startHarness({ server: client, waitOnline: false });
    try {
      const line = await h2.waitForLog((l) => l.event === 'link.failed');
      assert.match(String(line.reason), /is not a component port: it speaks jabber:client/);
      assert.doesNotMatch(h2.output(), /unknown domain|does not know XMPP_DOMAIN/);
    } finally {
      await h2.cleanup();
    }
  });
});
