import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import type { Element } from '@xmpp/xml';
import { ComponentLink, type LinkState } from '../../src/xmpp/component-link.js';
import { discoInfoReply } from '../../src/xmpp/replies.js';
import { FakeXmppServer } from '../support/fake-server.js';
import { SECRET } from './harness.js';

const LIMIT = 256 * 1024;
const REQUESTS = 60_000;
/** The most a socket read hands over at once; replies to one read may exceed the limit. */
const MAX_READ = 64 * 1024;

describe('backpressure', () => {
  test('a server that stops reading makes the component stop reading too: its unsent bytes stay bounded, and all is answered once the server reads again', async () => {
    const server = new FakeXmppServer(SECRET);
    await server.listen();
    let answered = 0;
    let maxBuffered = 0;
    const events: string[] = [];
    let onEvent = () => {};
    const request = (i: number) =>
      `<iq type='get' id='d${i}' from='example.com' to='auth.example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`;
    const reply = (id: string) => discoInfoReply({ id, to: 'example.com', from: 'auth.example.com' }, 'extauth-component');
    const link: ComponentLink = new ComponentLink({
      service: { host: '127.0.0.1', port: server.port, tls: false },
      domain: 'auth.example.com',
      secret: SECRET,
      log: pino({ level: 'silent' }),
      writeBufferLimit: LIMIT,
      onStanza: (stanza: Element) => {
        link.send(reply(stanza.attrs.id!));
        answered++;
        maxBuffered = Math.max(maxBuffered, link.bufferedBytes);
      },
      onCongested: () => {
        events.push('congested');
        onEvent();
      },
      onDrained: () => {
        events.push('drained');
        onEvent();
      },
      onStateChange: (state: LinkState) => state === 'online' && onEvent(),
    });
    const until = (check: () => boolean) =>
      new Promise<void>((resolve) => {
        if (check()) return resolve();
        onEvent = () => check() && resolve();
      });
    try {
      link.start();
      await until(() => link.online);
      await server.waitOnline();
      server.pauseReading();
      let flood = '';
      for (let i = 0; i < REQUESTS; i++) flood += request(i);
      const last = server.waitReply(`d${REQUESTS - 1}`, 60_000);
      server.writeRaw(flood);
      await until(() => events.includes('congested'));
      const perRead = Math.ceil(MAX_READ / request(0).length) + 1;
      const bound = LIMIT + perRead * reply('d00000').length;
      assert.ok(answered < REQUESTS, `it stopped reading requests (${answered} of ${REQUESTS} read)`);
      assert.ok(maxBuffered <= bound, `unsent bytes stayed under ${bound} (peak ${maxBuffered})`);

      const received = server.received.length;
      server.resumeReading();
      await until(() => events.includes('drained'));
      // Every request is answered in the end, and the bound held all along.
      await last;
      assert.ok(received < REQUESTS);
      assert.equal(answered, REQUESTS);
      assert.ok(maxBuffered <= bound, `unsent bytes stayed under ${bound} (peak ${maxBuffered})`);
    } finally {
      await link.stop();
      await server.close();
    }
  });
});
