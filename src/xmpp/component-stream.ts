import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Element } from '@xmpp/xml';
import { NS_COMPONENT, NS_STREAM_ERRORS, NS_STREAMS } from './namespaces.js';
import { StreamParser, type StreamFault, type StreamHeader } from './stream-parser.js';

/** Why a stream could not be opened or was lost, in words for the operator. */
export type LinkErrorReason =
  | 'refused'
  | 'unreachable'
  | 'timeout'
  | 'tls'
  | 'not-component-port'
  | 'not-xmpp'
  | 'host-unknown'
  | 'not-authorized'
  | 'conflict'
  | 'stream-error'
  | 'protocol'
  | 'closed'
  | 'aborted';

export class LinkError extends Error {
  constructor(
    readonly reason: LinkErrorReason,
    message: string,
    /** The stream error condition, when the server sent one. */
    readonly condition?: string,
  ) {
    super(message);
    this.name = 'LinkError';
  }
}

export interface ServiceAddress {
  readonly host: string;
  readonly port: number;
  /** Direct TLS, the certificate verified against the system CAs plus NODE_EXTRA_CA_CERTS. */
  readonly tls: boolean;
}

export interface ComponentStreamOptions {
  readonly service: ServiceAddress;
  readonly domain: string;
  readonly secret: string;
  /** One deadline for connecting, the TLS handshake, the stream header and the XEP-0114 handshake. */
  readonly timeoutMs: number;
  /** How long closing waits for the server's `</stream:stream>`. */
  readonly closeTimeoutMs?: number;
  /** Unsent bytes above which reading from the server stops until the socket drains. */
  readonly writeBufferLimit?: number;
  /** Aborts opening; once online, `close()` is the way to end the stream. */
  readonly signal?: AbortSignal;
  readonly onStanza: (stanza: Element) => void;
  /** The socket is connected and the stream header sent: from here on the server answers the handshake. */
  readonly onHandshaking?: () => void;
  /** Replies are not leaving fast enough; reading from the server is paused. */
  readonly onCongested?: () => void;
  /** The socket drained; reading resumed. */
  readonly onDrained?: () => void;
}

export const DEFAULT_WRITE_BUFFER_LIMIT = 1024 * 1024;
const DEFAULT_CLOSE_TIMEOUT_MS = 2000;
const FOOTER = '</stream:stream>';

type Phase = 'connecting' | 'opening' | 'handshaking' | 'online' | 'closing' | 'closed';

/**
 * One XEP-0114 stream over TCP or direct TLS: opens it, proves the secret, hands over stanzas,
 * and closes it. Nothing the server sends before it accepts the handshake is acted on. Written
 * on node:net/node:tls with a conformant XML parser rather than on xmpp.js's connection: the
 * stream rules (restricted XML, namespaces, CDATA), backpressure, an abortable handshake and
 * precise failure reasons each needed changes inside that class.
 */
export class ComponentStream {
  private phase: Phase = 'connecting';
  private failure: LinkError | null = null;
  /** A problem seen that the server may still explain better (a stream error usually follows). */
  private suspicion: LinkError | null = null;
  private outbox = '';
  private congested = false;
  private readonly parser: StreamParser;
  private readonly socket: net.Socket;
  private readonly settled: Promise<LinkError | null>;
  private onOnline: (() => void) | null = null;
  private onFailed: ((error: LinkError) => void) | null = null;

  /** Connects, opens the stream and completes the handshake; rejects with a LinkError. */
  static open(options: ComponentStreamOptions): Promise<ComponentStream> {
    const stream = new ComponentStream(options);
    return stream.opened().then(() => stream);
  }

  private constructor(private readonly options: ComponentStreamOptions) {
    const { host, port } = options.service;
    this.parser = new StreamParser({
      onOpen: (header) => this.onHeader(header),
      onElement: (element) => this.onElement(element),
      onClose: () => this.onServerClose(),
      onFault: (fault) => this.onFault(fault),
    });
    this.socket = options.service.tls ? tls.connect({ host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}) }) : net.connect({ host, port });
    const connectEvent = options.service.tls ? 'secureConnect' : 'connect';
    this.socket.once(connectEvent, () => this.onConnect());
    this.socket.on('data', (data: Buffer) => this.parser.write(data));
    this.socket.on('drain', () => this.onDrain());
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.fail(this.describeSocketError(error)));
    this.settled = new Promise((resolve) => {
      this.socket.once('close', () => {
        const ours = this.failure === null && this.phase === 'closing';
        const lost = this.failure ?? this.suspicion ?? new LinkError('closed', this.lostMessage());
        this.phase = 'closed';
        this.onFailed?.(lost);
        resolve(ours ? null : lost);
      });
    });
  }

  /** Resolves when the connection is gone: with why, or null when we closed it ourselves. */
  get closed(): Promise<LinkError | null> {
    return this.settled;
  }

  /** Bytes written to the socket that the kernel has not taken yet, plus replies not yet written. */
  get bufferedBytes(): number {
    return this.socket.writableLength + this.outbox.length;
  }

  get isCongested(): boolean {
    return this.congested;
  }

  /** Queues a serialised stanza; false when the stream is not online. */
  send(stanza: string): boolean {
    if (this.phase !== 'online') return false;
    // Replies produced in the same tick leave in one write: one syscall, one segment.
    if (this.outbox === '') process.nextTick(() => this.flush());
    this.outbox += stanza;
    return true;
  }

  /** Closes the stream politely: our `</stream:stream>`, then the server's, within the close timeout. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return;
    if (this.phase === 'online') {
      this.flush();
      this.phase = 'closing';
      this.socket.resume();
      this.socket.write(FOOTER);
      const timer = setTimeout(() => this.socket.destroy(), this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
      await this.settled;
      clearTimeout(timer);
      return;
    }
    this.phase = 'closing';
    this.socket.destroy();
    await this.settled;
  }

  private opened(): Promise<void> {
    const { signal, timeoutMs, service } = this.options;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const waitingFor = this.phase === 'connecting' ? 'connection' : this.phase === 'opening' ? 'stream header' : 'handshake reply';
        this.fail(this.suspicion ?? new LinkError('timeout', `no ${waitingFor} from ${service.host}:${service.port} within ${timeoutMs} ms`));
        this.socket.destroy();
      }, timeoutMs);
      const onAbort = () => {
        this.fail(new LinkError('aborted', 'stopped while connecting'));
        this.socket.destroy();
      };
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.onOnline = null;
        this.onFailed = null;
      };
      this.onOnline = () => {
        done();
        resolve();
      };
      this.onFailed = (error) => {
        done();
        this.socket.destroy();
        reject(error);
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private onConnect(): void {
    if (this.phase !== 'connecting') return;
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 30_000);
    this.phase = 'opening';
    this.socket.write(`<?xml version='1.0'?><stream:stream xmlns='${NS_COMPONENT}' xmlns:stream='${NS_STREAMS}' to='${escapeAttribute(this.options.domain)}'>`);
  }

  private onHeader(header: StreamHeader): void {
    if (this.phase !== 'opening') return;
    const { host, port } = this.options.service;
    if (header.xmlns !== NS_COMPONENT) {
      const speaks =
        header.xmlns === 'jabber:client'
          ? 'jabber:client: it is a client port (usually 5222)'
          : header.xmlns === 'jabber:server'
            ? 'jabber:server: it is a server-to-server port (usually 5269)'
            : `the namespace '${oneLogLine(header.xmlns ?? '')}'`;
      return this.abandon(
        new LinkError(
          'not-component-port',
          `${host}:${port} is not a component port: it speaks ${speaks}; point XMPP_SERVICE at the server's component listener (usually port 5347)`,
        ),
      );
    }
    if (header.id === undefined || header.id === '') {
      // Prosody opens a stream without an id just to send the stream error that refuses it.
      this.suspicion = new LinkError('protocol', `${host}:${port} opened the stream without an id, so no handshake is possible`);
      return;
    }
    this.phase = 'handshaking';
    this.options.onHandshaking?.();
    // XEP-0114: the hex SHA-1 of the stream id followed by the secret (as UTF-8; xmpp.js used latin1).
    const digest = createHash('sha1')
      .update(header.id + this.options.secret, 'utf8')
      .digest('hex');
    this.socket.write(`<handshake>${digest}</handshake>`);
  }

  private onElement(element: Element): void {
    const ns = element.attrs.xmlns;
    if (element.name === 'error' && ns === NS_STREAMS) return this.onStreamError(element);
    if (this.phase === 'online') return this.options.onStanza(element);
    if (this.phase === 'handshaking' && element.name === 'handshake' && ns === NS_COMPONENT) {
      this.phase = 'online';
      this.onOnline?.();
      return;
    }
    if (this.phase === 'handshaking' || this.phase === 'opening') {
      const what = ['iq', 'message', 'presence'].includes(element.name) ? `an <${element.name}/> stanza` : 'an element';
      this.fail(new LinkError('protocol', `the server sent ${what} before accepting the handshake; it was not acted on`));
      this.sendStreamError('not-authorized');
    }
  }

  private onStreamError(element: Element): void {
    const conditionElement = element.getChildElements().find((child) => child.name !== 'text' && child.attrs.xmlns === NS_STREAM_ERRORS);
    const condition = conditionElement?.name ?? 'undefined-condition';
    const text = oneLogLine(element.getChildText('text', NS_STREAM_ERRORS) ?? '');
    this.fail(this.describeStreamError(condition, text));
    this.endSocket();
  }

  private onServerClose(): void {
    if (this.phase === 'closing') {
      this.socket.end();
      return;
    }
    this.fail(
      new LinkError('closed', this.phase === 'online' ? 'the server closed the stream' : 'the server closed the stream before accepting the handshake'),
    );
    this.endSocket();
  }

  private onFault(fault: StreamFault): void {
    const { host, port } = this.options.service;
    if (this.phase === 'opening') {
      const hint = this.options.service.tls ? '' : ' (if it is a direct TLS port, use xmpps://)';
      this.fail(new LinkError('not-xmpp', `${host}:${port} did not answer with an XMPP stream${hint}`));
      this.socket.destroy();
      return;
    }
    this.fail(new LinkError('protocol', `${fault.message}: closing the stream (${fault.condition})`, fault.condition));
    this.sendStreamError(fault.condition);
  }

  /** Leaves a stream that is not ours to be in: close tag, then the socket. */
  private abandon(error: LinkError): void {
    this.fail(error);
    this.endSocket();
  }

  private sendStreamError(condition: string): void {
    if (this.socket.writable) this.socket.write(`<stream:error><${condition} xmlns='${NS_STREAM_ERRORS}'/></stream:error>`);
    this.endSocket();
  }

  private endSocket(): void {
    if (this.phase !== 'closing' && this.phase !== 'closed') this.phase = 'closing';
    if (this.socket.writable) this.socket.end(FOOTER);
    // The server may never close its side: do not wait for it.
    const timer = setTimeout(() => this.socket.destroy(), this.options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    timer.unref();
    void this.settled.then(() => clearTimeout(timer));
  }

  /** The first failure is the one reported: an EPIPE after a stream error is not the reason. */
  private fail(error: LinkError): void {
    if (this.failure !== null || this.phase === 'closed') return;
    if (this.phase === 'closing' && error.reason !== 'aborted') return;
    this.failure = error;
    if (this.phase !== 'online') this.onFailed?.(error);
  }

  private flush(): void {
    const data = this.outbox;
    if (data === '') return;
    this.outbox = '';
    if (this.socket.destroyed || !this.socket.writable) return;
    const flowing = this.socket.write(data);
    // write() returned false: 'drain' will follow, and with it the resume.
    if (!flowing && !this.congested && this.socket.writableLength > (this.options.writeBufferLimit ?? DEFAULT_WRITE_BUFFER_LIMIT)) {
      // The server is not reading our replies: stop reading its requests until it does.
      this.congested = true;
      this.socket.pause();
      this.options.onCongested?.();
    }
  }

  private onDrain(): void {
    if (!this.congested) return;
    this.congested = false;
    if (this.phase === 'online') this.socket.resume();
    this.options.onDrained?.();
  }

  private lostMessage(): string {
    const { host, port, tls: secure } = this.options.service;
    if (this.phase === 'connecting' || this.phase === 'opening') {
      return `${host}:${port} closed the connection without opening an XMPP stream${secure ? '' : ' (if it is a direct TLS port, use xmpps://)'}`;
    }
    return this.phase === 'online' || this.phase === 'closing'
      ? 'the server closed the connection'
      : 'the server closed the connection before accepting the handshake';
  }

  private describeStreamError(condition: string, text: string): LinkError {
    const { domain, service } = this.options;
    const said = text === '' ? '' : ` (the server said: ${text})`;
    switch (condition) {
      case 'host-unknown':
        return new LinkError(
          'host-unknown',
          `the server at ${service.host}:${service.port} does not know XMPP_DOMAIN '${domain}' as a component: declare it there (Prosody: Component "${domain}" with component_secret; ejabberd: '${domain}' under the hosts of an ejabberd_service listener)${said}`,
          condition,
        );
      case 'not-authorized':
        // ejabberd answers an unknown domain this way too: it checks the domain with the secret.
        return new LinkError(
          'not-authorized',
          `the server refused the handshake: XMPP_SECRET is not the secret the server has for '${domain}' (on ejabberd, also when '${domain}' is not among the service listener's hosts)`,
          condition,
        );
      case 'conflict':
        return new LinkError('conflict', `another component is already connected as '${domain}'${said}`, condition);
      case 'invalid-namespace':
        return new LinkError(
          'not-component-port',
          `${service.host}:${service.port} refused a component stream (invalid-namespace): it is not a component port${said}`,
          condition,
        );
      case 'system-shutdown':
        return new LinkError('closed', `the server is shutting down${said}`, condition);
      default:
        return new LinkError('stream-error', `the server ended the stream: ${condition}${said}`, condition);
    }
  }

  private describeSocketError(error: NodeJS.ErrnoException): LinkError {
    const { host, port } = this.options.service;
    const code = error.code ?? '';
    if (code === 'ECONNREFUSED')
      return new LinkError('refused', `connection refused by ${host}:${port}: nothing listens there (is the server running, and is this its component port?)`);
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new LinkError('unreachable', `cannot resolve the host name ${host} (${code})`);
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT')
      return new LinkError('unreachable', `${host}:${port} is unreachable (${code})`);
    if (this.options.service.tls && this.phase === 'connecting') return describeTlsError(host, port, error);
    if (code === 'EPIPE' || code === 'ECONNRESET') return new LinkError('closed', `${this.lostMessage()} (${code})`);
    return new LinkError('closed', `${code === '' ? '' : `${code}: `}${error.message}`);
  }
}

const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
]);

function describeTlsError(host: string, port: number, error: NodeJS.ErrnoException): LinkError {
  const code = error.code ?? '';
  if (UNTRUSTED.has(code))
    return new LinkError(
      'tls',
      `certificate for ${host} is not trusted: ${code}; add its CA to NODE_EXTRA_CA_CERTS (a PEM file, read when the component starts)`,
    );
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return new LinkError('tls', `certificate for ${host} does not name ${host}: ${error.message}`);
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return new LinkError('tls', `certificate for ${host} is not valid now: ${code}`);
  if (code === 'ECONNRESET' || code === 'EPIPE')
    return new LinkError('tls', `${host}:${port} closed the connection during the TLS handshake (is it a plain-text port? then use xmpp://)`);
  return new LinkError('tls', `TLS with ${host}:${port} failed: ${code === '' ? '' : `${code}: `}${error.message} (if it is a plain-text port, use xmpp://)`);
}

function escapeAttribute(value: string): string {
  return value.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Text from the server, made safe for one log line. */
function oneLogLine(text: string): string {
  const clean = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}
