import type { Element } from '@xmpp/xml';
import type { Logger } from 'pino';
import { backoffDelay, RECONNECT_BACKOFF } from '../core/backoff.js';
import { ComponentStream, LinkError, type ComponentStreamOptions, type ServiceAddress } from './component-stream.js';

/**
 * idle → connecting → handshaking → online, and after any loss → backoff → connecting again.
 * stop() from any state → stopping → stopped.
 */
export type LinkState = 'idle' | 'connecting' | 'handshaking' | 'online' | 'backoff' | 'stopping' | 'stopped';

/** What the link needs of a stream; the real one is ComponentStream, tests pass a fake. */
export interface LinkStream {
  send(stanza: string): boolean;
  close(): Promise<void>;
  readonly closed: Promise<LinkError | null>;
  readonly bufferedBytes: number;
}

export type OpenStream = (options: ComponentStreamOptions) => Promise<LinkStream>;

export interface ComponentLinkOptions {
  readonly service: ServiceAddress & { readonly uri?: string };
  readonly domain: string;
  readonly secret: string;
  readonly log: Logger;
  readonly onStanza: (stanza: Element) => void;
  /** Bounds connecting and the handshake, together. */
  readonly connectTimeoutMs?: number;
  readonly closeTimeoutMs?: number;
  /** Unsent reply bytes above which the link stops reading requests until the socket drains. */
  readonly writeBufferLimit?: number;
  /** The server is not taking our replies: reading from it is paused (script output may pause too). */
  readonly onCongested?: () => void;
  readonly onDrained?: () => void;
  readonly onStateChange?: (state: LinkState) => void;
  /** Delay before reconnect attempt `attempt` (0-based). */
  readonly backoff?: (attempt: number) => number;
  readonly openStream?: OpenStream;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Keeps one XEP-0114 stream up: connects, hands over stanzas, and after any loss reconnects
 * with capped exponential backoff and jitter. One AbortSignal ends whatever is under way:
 * a connection attempt, a handshake or a backoff wait; an online stream is closed politely.
 */
export class ComponentLink {
  private currentState: LinkState = 'idle';
  private stream: LinkStream | null = null;
  private loop: Promise<void> | null = null;
  private stopped: Promise<void> | null = null;
  private readonly abort = new AbortController();
  private reconnectCount = 0;
  private lastFailure: string | null = null;
  private congested = false;

  constructor(private readonly options: ComponentLinkOptions) {}

  get state(): LinkState {
    return this.currentState;
  }

  get online(): boolean {
    return this.currentState === 'online';
  }

  /** Connection attempts after the first one (each retry after a failure or a loss counts). */
  get reconnects(): number {
    return this.reconnectCount;
  }

  /** Why the last attempt failed or the last stream was lost, in words; null before any failure. */
  get lastError(): string | null {
    return this.lastFailure;
  }

  /** Reply bytes not yet taken by the kernel (0 when offline). */
  get bufferedBytes(): number {
    return this.stream?.bufferedBytes ?? 0;
  }

  start(): void {
    if (this.currentState !== 'idle') return;
    this.loop = this.run();
  }

  /** Writes a serialised stanza; false when there is no stream to write it to. */
  send(stanza: string): boolean {
    return this.currentState === 'online' && this.stream !== null && this.stream.send(stanza);
  }

  /** Stops reconnecting and closes the stream politely; resolves in every state. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.setState('stopping');
      this.abort.abort();
      const stream = this.stream;
      if (stream !== null) await stream.close();
      await this.loop;
      this.setState('stopped');
    })();
    return this.stopped;
  }

  private setState(state: LinkState): void {
    if (this.currentState === state) return;
    // Once stopping, only 'stopped' may follow.
    if ((this.currentState === 'stopping' || this.currentState === 'stopped') && state !== 'stopped') return;
    this.currentState = state;
    this.options.onStateChange?.(state);
  }

  private async run(): Promise<void> {
    const { log, service, domain } = this.options;
    const signal = this.abort.signal;
    const where = service.uri ?? `${service.tls ? 'xmpps' : 'xmpp'}://${service.host}:${service.port}`;
    const openStream = this.options.openStream ?? ((options) => ComponentStream.open(options));
    const backoff = this.options.backoff ?? ((attempt) => backoffDelay(RECONNECT_BACKOFF, attempt));
    let attempt = 0;
    while (!signal.aborted) {
      this.setState('connecting');
      log.info({ event: 'link.connecting', service: where, domain, attempt: attempt + 1 }, 'connecting');
      let stream: LinkStream | null = null;
      try {
        stream = await openStream({
          service,
          domain,
          secret: this.options.secret,
          timeoutMs: this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
          ...(this.options.closeTimeoutMs === undefined ? {} : { closeTimeoutMs: this.options.closeTimeoutMs }),
          ...(this.options.writeBufferLimit === undefined ? {} : { writeBufferLimit: this.options.writeBufferLimit }),
          signal,
          onStanza: this.options.onStanza,
          onHandshaking: () => this.setState('handshaking'),
          onCongested: () => {
            this.congested = true;
            log.warn(
              { event: 'link.congested', service: where, bufferedBytes: this.bufferedBytes },
              'the server is not reading our replies: reading from it is paused',
            );
            this.options.onCongested?.();
          },
          onDrained: () => {
            this.congested = false;
            log.info({ event: 'link.drained', service: where }, 'the server caught up: reading resumed');
            this.options.onDrained?.();
          },
        });
      } catch (error) {
        if (signal.aborted) break;
        this.lastFailure = reasonOf(error);
        log.warn({ event: 'link.failed', service: where, reason: this.lastFailure }, 'connection attempt failed');
      }
      if (stream !== null) {
        if (signal.aborted) {
          await stream.close();
          break;
        }
        attempt = 0;
        this.stream = stream;
        this.setState('online');
        log.info({ event: 'link.connected', service: where, domain }, 'connected');
        const lost = await stream.closed;
        // A stream lost while congested never drains: whoever paused for it must not stay paused.
        if (this.congested) {
          this.congested = false;
          this.options.onDrained?.();
        }
        this.stream = null;
        if (signal.aborted) break;
        this.lastFailure = lost?.message ?? 'the server closed the connection';
        log.warn({ event: 'link.lost', service: where, reason: this.lastFailure }, 'connection lost');
      }
      this.setState('backoff');
      const delayMs = backoff(attempt++);
      log.info({ event: 'link.reconnecting', service: where, delayMs, attempt: attempt + 1 }, 'reconnecting after delay');
      await sleep(delayMs, signal);
      if (!signal.aborted) this.reconnectCount++;
    }
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof LinkError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
