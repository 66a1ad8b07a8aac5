import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Element } from '@xmpp/xml';
import { ComponentLink, type LinkState } from '../../src/xmpp/component-link.js';
import { FakeXmppServer } from '../support/fake-server.js';
import { SECRET, startHarness } from './harness.js';

const log = pino({ level: 'silent' });

function linkTo(server: FakeXmppServer, onStanza: (stanza: Element) => void = () => {}) {
  const states: LinkState[] = [];
  let onState = (_state: LinkState) => {};
  const link = new ComponentLink({
    service: { host: '127.0.0.1', port: server.port, tls: false },
    domain: 'auth.example.com',
    secret: SECRET,
    log,
    onStanza,
    onStateChange: (state) => {
      states.push(state);
      onState(state);
    },
  });
  const reached = (wanted: LinkState) =>
    new Promise<void>((resolve) => {
      if (link.state === wanted) return resolve();
      onState = (state) => state === wanted && resolve();
    });
  return { link, states, reached };
}

describe('ComponentLink over a real socket', () => {
  test('stop() during the handshake resolves at once', async () => {
    const server = new FakeXmppServer(SECRET);
    server.ignoreHandshake = true;
    await server.listen();
    const { link, states } = linkTo(server);
    try {
      link.start();
      await server.waitHandshakes(1);
      assert.equal(link.state, 'handshaking');
      await link.stop();
      assert.deepEqual(states, ['connecting', 'handshaking', 'stopping', 'stopped']);
    } finally {
      await server.close();
    }
  });

  test('stop() while online closes the stream with </stream:stream>', async () => {
    const server = new FakeXmppServer(SECRET);
    await server.listen();
    const { link, reached } = linkTo(server);
    try {
      link.start();
      await reached('online');
      await link.stop();
      assert.ok(server.rawReceived.join('').endsWith('</stream:stream>'), server.rawReceived.join(''));
      assert.equal(link.state, 'stopped');
    } finally {
      await server.close();
    }
  });

  test('the daemon exits 0 on SIGTERM while the server sits on its handshake', async () => {
    const server = new FakeXmppServer(SECRET);
    server.ignoreHandshake = true;
    await server.listen();
    const h = await startHarness({ server, waitOnline: false });
    try {
      await server.waitHandshakes(1);
      assert.equal(await h.stop(), 0);
    } finally {
      await h.cleanup();
    }
  });
});
