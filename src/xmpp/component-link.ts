import type { Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { backoffDelay, RECONNECT_BACKOFF } from '../core/backoff.js';
import { Utf8SafeComponent } from './utf8-component.js';

const CLOSE_TIMEOUT_MS = 2000;

export interface ComponentLinkOptions {
  readonly service: string;
  readonly domain: string;
  readonly secret: string;
  readonly log: Logger;
  readonly onStanza: (stanza: Element) => void;
  readonly connectTimeoutMs?: number;
}

/**
 * Keeps one XEP-0114 stream up: connects, hands over stanzas, and after any loss reconnects
 * with capped exponential backoff and jitter (xmpp.js's own reconnect retries every second,
 * forever, in lockstep with every other instance).
 */
export class ComponentLink {
  private entity: Utf8SafeComponent | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private outbox = '';
  private retries = 0;

  constructor(private readonly options: ComponentLinkOptions) {}

  get online(): boolean {
    return this.entity !== null;
  }

  /** Connection attempts after a lost connection or a failed attempt. */
  get reconnects(): number {
    return this.retries;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Writes a serialised stanza; false when there is no stream to write it to. */
  send(stanza: string): boolean {
    const socket = this.entity?.socket;
    if (!socket || socket.destroyed || !socket.writable) return false;
    // Replies produced in the same tick leave in one write: one syscall, one segment.
    if (this.outbox === '') process.nextTick(() => this.flush(socket));
    this.outbox += stanza;
    return true;
  }

  private flush(socket: NonNullable<Utf8SafeComponent['socket']>): void {
    const data = this.outbox;
    this.outbox = '';
    if (!socket.destroyed && socket.writable) socket.write(data);
  }

  /** Stops reconnecting and closes the stream politely. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const entity = this.entity;
    if (entity) {
      try {
        await entity.stop();
      } catch {
        entity.socket?.destroy();
      }
    }
    await this.loop;
  }

  private async run(): Promise<void> {
    const { log, service, domain } = this.options;
    let attempt = 0;
    while (!this.stopping) {
      const entity = new Utf8SafeComponent({ service, domain });
      let lastError: Error | null = null;
      entity.on('error', (error: Error) => (lastError = error));
      try {
        log.info({ service, domain, attempt: attempt + 1 }, 'connecting');
        await this.connect(entity);
        attempt = 0;
        this.entity = entity;
        log.info({ service, domain }, 'connected');
        await new Promise<void>((resolve) => {
          entity.once('disconnect', () => resolve());
          // The server closed the stream: close the socket too, so we can reconnect.
          entity.once('close', () => void entity.disconnect().catch(() => entity.socket?.destroy()));
        });
        this.entity = null;
        if (this.stopping) break;
        log.warn({ service, reason: describe(lastError) ?? 'the server closed the connection' }, 'connection lost');
      } catch (error) {
        this.entity = null;
        entity.socket?.destroy();
        if (this.stopping) break;
        log.warn({ service, reason: describe(lastError ?? (error as Error)) }, 'connection attempt failed');
      }
      const delayMs = backoffDelay(RECONNECT_BACKOFF, attempt++);
      this.retries++;
      log.info({ service, delayMs, attempt: attempt + 1 }, 'reconnecting after delay');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  private async connect(entity: Utf8SafeComponent): Promise<void> {
    const { service, domain, secret, onStanza } = this.options;
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    entity.timeout = timeoutMs;
    const online = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
      entity.once('online', () => {
        clearTimeout(timer);
        resolve();
      });
      entity.once('error', (error: Error) => {
        clearTimeout(timer);
        reject(error);
      });
      entity.once('disconnect', () => {
        clearTimeout(timer);
        reject(new Error('the server closed the connection during the handshake'));
      });
    });
    online.catch(() => {});
    entity.on('open', (header: Element) => {
      entity.authenticate(header.attrs.id ?? '', secret).catch((error: Error) => entity.emit('error', error));
    });
    entity.on('stanza', onStanza);
    await entity.connect(service);
    entity.socket?.setNoDelay(true);
    entity.socket?.setKeepAlive(true, 30_000);
    await entity.open({ domain });
    await online;
    // From here on the timeout bounds how long closing waits for the server's </stream:stream>.
    entity.timeout = CLOSE_TIMEOUT_MS;
  }
}

function describe(error: Error | null): string | undefined {
  if (error === null) return undefined;
  const condition = (error as { condition?: string }).condition;
  if (condition === 'not-authorized') return 'the server refused the handshake: check XMPP_SECRET';
  if (condition === 'host-unknown') return 'the server does not know XMPP_DOMAIN as a component';
  if (condition === 'conflict') return 'another component is connected with this XMPP_DOMAIN';
  const code = (error as NodeJS.ErrnoException).code;
  return condition ?? (code ? `${code}: ${error.message}` : error.message);
}
