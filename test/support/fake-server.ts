import { createHash, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { StringDecoder } from 'node:string_decoder';
import xml, { type Element } from '@xmpp/xml';

/**
 * The server side of XEP-0114, in the test process, for fault injection: it accepts one
 * component at a time, checks its handshake, and lets a test send raw stanzas and await replies.
 */
export class FakeXmppServer {
  readonly server: net.Server;
  private socket: net.Socket | null = null;
  private waiters = new Map<string, (el: Element) => void>();
  readonly received: Element[] = [];
  readonly rawReceived: string[] = [];
  connections = 0;
  private onlineWaiters: Array<() => void> = [];
  /** When set, the handshake is refused with this stream error. */
  refuseHandshake: string | null = null;
  /** Raw XML written before the `<handshake/>` that accepts a component (a hostile server's move). */
  beforeHandshakeReply: string | null = null;
  /** When true, a correct handshake is never answered (the component waits, handshaking). */
  ignoreHandshake = false;
  /** When set, the stream is refused with this stream error right after the header (e.g. host-unknown). */
  refuseStream: string | null = null;
  /** Replaces the stream header the server answers with (e.g. a client port's). */
  streamHeader: ((id: string, to: string | undefined) => string) | null = null;
  /** Each handshake as it arrives (the component's socket is open and handshaking). */
  readonly handshakes: net.Socket[] = [];
  private handshakeWaiters: Array<() => void> = [];

  /** With `tls`, a direct TLS listener (xmpps://) presenting that key and certificate. */
  constructor(
    readonly secret: string,
    options: { tls?: { key: string; cert: string } } = {},
  ) {
    this.server = options.tls
      ? tls.createServer({ key: options.tls.key, cert: options.tls.cert }, (socket) => this.accept(socket))
      : net.createServer((socket) => this.accept(socket));
    // A TLS handshake the client gives up on is not the test's business.
    this.server.on('tlsClientError', () => {});
  }

  async listen(port = 0): Promise<number> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server, 'listening');
    return (this.server.address() as net.AddressInfo).port;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  get connected(): boolean {
    return this.socket !== null && !this.socket.destroyed;
  }

  waitOnline(timeoutMs = 10_000): Promise<void> {
    if (this.connected && this.handshaken) return Promise.resolve();
    return withTimeout(new Promise<void>((resolve) => this.onlineWaiters.push(resolve)), timeoutMs, 'component never connected');
  }

  private handshaken = false;

  /** Resolves once `count` handshakes in all have arrived. */
  waitHandshakes(count: number, timeoutMs = 10_000): Promise<void> {
    const check = (resolve: () => void) => {
      if (this.handshakes.length >= count) resolve();
      else this.handshakeWaiters.push(() => check(resolve));
    };
    return withTimeout(new Promise<void>(check), timeoutMs, `fewer than ${count} handshakes arrived`);
  }

  /** Handshakes accepted so far, over all connections. */
  accepted = 0;

  /** Resolves once `count` components in all have been accepted (reconnections count). */
  waitAccepted(count: number, timeoutMs = 15_000): Promise<void> {
    const check = (resolve: () => void) => {
      if (this.accepted >= count) resolve();
      else this.onlineWaiters.push(() => check(resolve));
    };
    return withTimeout(new Promise<void>(check), timeoutMs, `fewer than ${count} components were accepted`);
  }

  private accept(socket: net.Socket): void {
    this.connections++;
    const streamId = randomUUID();
    const decoder = new StringDecoder('utf8');
    const parser = new xml.Parser();
    parser.on('start', (header: Element) => {
      socket.write(
        this.streamHeader?.(streamId, header.attrs.to) ??
          `<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:component:accept' id='${streamId}' from='${header.attrs.to}'>`,
      );
      if (this.refuseStream !== null) {
        socket.end(
          `<stream:error><${this.refuseStream} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>refused by the test</text></stream:error></stream:stream>`,
        );
      }
    });
    parser.on('element', (el: Element) => {
      if (el.name === 'handshake') {
        this.handshakes.push(socket);
        for (const resolve of this.handshakeWaiters.splice(0)) resolve();
        if (this.ignoreHandshake) return;
        const expected = createHash('sha1')
          .update(streamId + this.secret, 'utf8')
          .digest('hex');
        if (this.refuseHandshake || el.getText() !== expected) {
          socket.end(`<stream:error><${this.refuseHandshake ?? 'not-authorized'} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`);
          return;
        }
        this.socket?.destroy();
        this.socket = socket;
        this.handshaken = true;
        this.accepted++;
        if (this.beforeHandshakeReply !== null) socket.write(this.beforeHandshakeReply);
        socket.write('<handshake/>');
        for (const resolve of this.onlineWaiters.splice(0)) resolve();
        return;
      }
      this.received.push(el);
      const id = el.attrs.id;
      if (id !== undefined && this.waiters.has(id)) {
        this.waiters.get(id)!(el);
        this.waiters.delete(id);
      }
    });
    parser.on('end', () => socket.end('</stream:stream>'));
    socket.on('data', (data: Buffer) => {
      const text = decoder.write(data);
      this.rawReceived.push(text);
      parser.write(text);
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.socket === socket) {
        this.socket = null;
        this.handshaken = false;
      }
    });
  }

  /** Writes raw bytes to the component (for split-UTF-8 tests). */
  writeRaw(data: string | Buffer): void {
    if (!this.socket) throw new Error('no component connected');
    this.socket.write(data);
  }

  /** Sends an iq (raw XML with `id` attribute) and resolves with the reply carrying the same id. */
  request(stanza: string, id: string, timeoutMs = 15_000): Promise<Element> {
    const reply = this.waitReply(id, timeoutMs);
    this.writeRaw(stanza);
    return reply;
  }

  /** Resolves with the reply carrying `id` (call it before the request can be answered). */
  waitReply(id: string, timeoutMs = 15_000): Promise<Element> {
    return withTimeout(new Promise<Element>((resolve) => this.waiters.set(id, resolve)), timeoutMs, `no reply to ${id}`);
  }

  /** Stops reading from the component (its replies pile up), as a stuck server would. */
  pauseReading(): void {
    this.socket?.pause();
  }

  resumeReading(): void {
    this.socket?.resume();
  }

  /** Drops the component's connection abruptly. */
  dropConnection(): void {
    this.socket?.destroy();
    this.socket = null;
    this.handshaken = false;
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    this.server.close();
  }
}

let counter = 0;
export function nextId(): string {
  return `t${++counter}-${Date.now().toString(36)}`;
}

export function escapeText(text: string): string {
  return xml.escapeXMLText(text);
}

export function authIq(o: {
  id: string;
  from?: string | undefined;
  to?: string | undefined;
  kind?: string | undefined;
  type?: string | undefined;
  user?: string | undefined;
  server?: string | undefined;
  password?: string | undefined;
  /** The `hash` attribute of a `scram` query. */
  hash?: string | undefined;
}): string {
  const kind = o.kind ?? 'auth';
  const type = o.type ?? (kind === 'auth' || kind === 'isuser' || kind === 'scram' ? 'get' : 'set');
  const attrs = [
    o.user !== undefined ? ` user='${xml.escapeXML(o.user)}'` : '',
    o.server !== undefined ? ` server='${xml.escapeXML(o.server)}'` : '',
    o.hash !== undefined ? ` hash='${xml.escapeXML(o.hash)}'` : '',
  ].join('');
  const body = o.password === undefined ? '/>' : `>${xml.escapeXMLText(o.password)}</${kind}>`;
  return `<iq type='${type}' id='${o.id}' from='${o.from ?? 'example.com'}' to='${o.to ?? 'auth.example.com'}'><${kind} xmlns='urn:x-extauth:0'${attrs}${body}</iq>`;
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(message)), ms);
    }),
  ]);
}
