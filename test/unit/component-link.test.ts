import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { pino } from 'pino';
import { ComponentLink, type LinkState, type LinkStream, type OpenStream } from '../../src/xmpp/component-link.js';
import { LinkError, type ComponentStreamOptions } from '../../src/xmpp/component-stream.js';

const log = pino({ level: 'silent' });
const SERVICE = { host: '127.0.0.1', port: 5347, tls: false };

/** A stream the test controls: `lose()` ends it as the server would, `close()` as we would. */
class FakeStream implements LinkStream {
  readonly sent: string[] = [];
  closeCalls = 0;
  bufferedBytes = 0;
  private settle!: (error: LinkError | null) => void;
  readonly closed = new Promise<LinkError | null>((resolve) => (this.settle = resolve));

  send(stanza: string): boolean {
    this.sent.push(stanza);
    return true;
  }

  async close(): Promise<void> {
    this.closeCalls++;
    this.settle(null);
  }

  lose(error: LinkError): void {
    this.settle(error);
  }
}

/** An opener whose attempts the test settles one by one; each attempt honours the abort signal. */
class FakeOpener {
  readonly attempts: Array<{
    options: ComponentStreamOptions;
    succeed: (stream: LinkStream) => void;
    fail: (error: LinkError) => void;
  }> = [];
  private waiters: Array<() => void> = [];

  readonly open: OpenStream = (options) =>
    new Promise<LinkStream>((resolve, reject) => {
      options.signal?.addEventListener('abort', () => reject(new LinkError('aborted', 'stopped while connecting')), { once: true });
      this.attempts.push({ options, succeed: resolve, fail: reject });
      for (const wake of this.waiters.splice(0)) wake();
    });

  /** Resolves when attempt number `n` (1-based) has started. */
  async attempt(n: number): Promise<(typeof this.attempts)[number]> {
    while (this.attempts.length < n) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.attempts[n - 1]!;
  }
}

function createLink(opener: FakeOpener, extra: Partial<ConstructorParameters<typeof ComponentLink>[0]> = {}) {
  const states: LinkState[] = [];
  const waiters: Array<{ state: LinkState; resolve: () => void }> = [];
  const link = new ComponentLink({
    service: SERVICE,
    domain: 'auth.example.com',
    secret: 's',
    log,
    onStanza: () => {},
    openStream: opener.open,
    backoff: (attempt) => 1000 * 2 ** attempt,
    onStateChange: (state) => {
      states.push(state);
      for (const waiter of waiters.filter((w) => w.state === state)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    ...extra,
  });
  const reached = (state: LinkState) => (link.state === state ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ state, resolve })));
  return { link, states, reached };
}

describe('ComponentLink lifecycle', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  it('stop() before start() resolves at once and never connects', async () => {
    const opener = new FakeOpener();
    const { link } = createLink(opener);
    assert.equal(link.state, 'idle');
    await link.stop();
    assert.equal(link.state, 'stopped');
    link.start();
    assert.equal(opener.attempts.length, 0);
  });

  it('stop() while connecting aborts the attempt and resolves', async () => {
    const opener = new FakeOpener();
    const { link, states } = createLink(opener);
    link.start();
    const attempt = await opener.attempt(1);
    assert.equal(link.state, 'connecting');
    await link.stop();
    assert.equal(attempt.options.signal?.aborted, true);
    assert.deepEqual(states, ['connecting', 'stopping', 'stopped']);
    assert.equal(opener.attempts.length, 1, 'no reconnect after stop');
  });

  it('stop() during the handshake aborts it and resolves (it used to hang until a second signal)', async () => {
    const opener = new FakeOpener();
    const { link, states } = createLink(opener);
    link.start();
    const attempt = await opener.attempt(1);
    attempt.options.onHandshaking?.();
    assert.equal(link.state, 'handshaking');
    await link.stop();
    assert.equal(attempt.options.signal?.aborted, true);
    assert.deepEqual(states, ['connecting', 'handshaking', 'stopping', 'stopped']);
  });

  it('stop() while online closes the stream politely and resolves', async () => {
    const opener = new FakeOpener();
    const { link, reached } = createLink(opener);
    link.start();
    const stream = new FakeStream();
    (await opener.attempt(1)).succeed(stream);
    await reached('online');
    assert.equal(link.online, true);
    assert.equal(link.send('<iq/>'), true);
    await link.stop();
    assert.equal(stream.closeCalls, 1);
    assert.equal(link.state, 'stopped');
    assert.equal(link.send('<iq/>'), false);
    assert.equal(opener.attempts.length, 1);
  });

  it('stop() during the backoff wait resolves without waiting for the timer', async () => {
    const opener = new FakeOpener();
    const { link, reached } = createLink(opener);
    link.start();
    (await opener.attempt(1)).fail(new LinkError('refused', 'connection refused by 127.0.0.1:5347'));
    await reached('backoff');
    await link.stop();
    assert.equal(link.state, 'stopped');
    mock.timers.tick(60_000);
    await Promise.resolve();
    assert.equal(opener.attempts.length, 1, 'the pending reconnect never happens');
  });

  it('stop() while stopping returns the same promise; after stopped it resolves at once', async () => {
    const opener = new FakeOpener();
    const { link } = createLink(opener);
    link.start();
    const stream = new FakeStream();
    (await opener.attempt(1)).succeed(stream);
    const first = link.stop();
    assert.equal(link.state, 'stopping');
    assert.equal(link.stop(), first);
    await first;
    assert.equal(link.state, 'stopped');
    await link.stop();
    assert.equal(stream.closeCalls, 1);
  });

  it('a stream that opens after stop() was called is closed, not used', async () => {
    const opener = new FakeOpener();
    // An opener that ignores the abort signal, as a racing connect might.
    let finish!: (stream: LinkStream) => void;
    const { link } = createLink(opener, { openStream: () => new Promise<LinkStream>((resolve) => (finish = resolve)) });
    link.start();
    await Promise.resolve();
    const stopped = link.stop();
    const stream = new FakeStream();
    finish(stream);
    await stopped;
    assert.equal(stream.closeCalls, 1);
    assert.equal(link.online, false);
  });

  it('after a loss it backs off, reconnects, counts the reconnect and keeps the reason', async () => {
    const opener = new FakeOpener();
    const { link, reached } = createLink(opener);
    link.start();
    const first = new FakeStream();
    (await opener.attempt(1)).succeed(first);
    await reached('online');
    assert.equal(link.reconnects, 0);
    assert.equal(link.lastError, null);
    first.lose(new LinkError('closed', 'the server closed the stream'));
    await reached('backoff');
    assert.equal(link.online, false);
    assert.equal(link.lastError, 'the server closed the stream');
    mock.timers.tick(999);
    await Promise.resolve();
    assert.equal(opener.attempts.length, 1, 'still waiting: the first delay is 1000 ms here');
    mock.timers.tick(1);
    const second = await opener.attempt(2);
    assert.equal(link.reconnects, 1);
    second.fail(new LinkError('not-authorized', 'the server refused the handshake'));
    await reached('backoff');
    assert.equal(link.lastError, 'the server refused the handshake');
    mock.timers.tick(1000);
    await Promise.resolve();
    assert.equal(opener.attempts.length, 2, 'the second delay doubled');
    mock.timers.tick(1000);
    const third = await opener.attempt(3);
    assert.equal(link.reconnects, 2);
    third.succeed(new FakeStream());
    await reached('online');
    await link.stop();
  });

  /** A link online over a fake stream, recording the congestion events it passes on. */
  async function onlineRecordingFlow() {
    const opener = new FakeOpener();
    const events: string[] = [];
    const { link, reached } = createLink(opener, { onCongested: () => events.push('congested'), onDrained: () => events.push('drained') });
    link.start();
    const attempt = await opener.attempt(1);
    const stream = new FakeStream();
    attempt.succeed(stream);
    await reached('online');
    return { link, reached, events, stream, options: attempt.options };
  }

  it('a stream lost while congested releases whoever paused for it', async () => {
    const { link, reached, events, stream, options } = await onlineRecordingFlow();
    options.onCongested?.();
    assert.deepEqual(events, ['congested']);
    stream.lose(new LinkError('closed', 'the server closed the stream'));
    await reached('backoff');
    assert.deepEqual(events, ['congested', 'drained']);
    await link.stop();
  });

  it('a stream lost while flowing does not report a drain', async () => {
    const { link, reached, events, stream, options } = await onlineRecordingFlow();
    options.onCongested?.();
    options.onDrained?.();
    stream.lose(new LinkError('closed', 'the server closed the stream'));
    await reached('backoff');
    assert.deepEqual(events, ['congested', 'drained']);
    await link.stop();
  });
});
