// A minimal real XMPP client (RFC 6120) for end-to-end tests: plain TCP (no TLS), SASL PLAIN or
// SCRAM-SHA-256 (RFC 7677, without channel binding), stream restart, resource binding and request/reply IQs. Enough to prove what a server says to
// a user logging in; deliberately nothing more. Used by the Prosody and ejabberd e2e suites.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

/** The parts of an ltx Element (what @xmpp/xml produces) that tests use. */
export interface Element {
  name: string;
  attrs: Record<string, string>;
  children: Array<Element | string>;
  parent: Element | null;
  is(name: string, xmlns?: string): boolean;
  getChild(name: string, xmlns?: string): Element | undefined;
  getChildren(name: string, xmlns?: string): Element[];
  getChildElements(): Element[];
  getChildText(name: string, xmlns?: string): string | null;
  getText(): string;
  attr(name: string, value?: string): string | undefined;
  toString(): string;
}

interface XmlParser {
  on(event: 'start' | 'element' | 'end', listener: (el: Element) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  write(data: string): void;
}

// @xmpp/xml is CommonJS without type declarations.
const xmlPkg = createRequire(import.meta.url)('@xmpp/xml') as { Parser: new () => XmlParser };
const parseOne = createRequire(import.meta.url)('@xmpp/xml/lib/parse.js') as (data: string) => Element;

const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
const DEFAULT_TIMEOUT_MS = 10_000;

export interface ServerAddress {
  host: string;
  port: number;
  /** The domain to open the stream to (`to`), e.g. `localhost`. */
  domain: string;
  /** Time allowed for the whole operation. Default 10 s. */
  timeoutMs?: number;
}

export interface LoginOptions extends ServerAddress {
  username: string;
  password: string;
}

/** The SASL mechanisms this client speaks. */
export type Mechanism = 'PLAIN' | 'SCRAM-SHA-256';

export interface LoginResult {
  ok: boolean;
  /**
   * On failure: the SASL `<failure/>` condition (`not-authorized`, `temporary-auth-failure`, ...),
   * a stream error condition, `connection-closed`, or `client-timeout`.
   */
  condition?: string;
  elapsedMs: number;
}

/** Opens a stream, authenticates with SASL PLAIN, and closes. Resolves with success or the failure condition. */
export function saslPlainLogin(o: LoginOptions): Promise<LoginResult> {
  return saslLogin({ ...o, mechanism: 'PLAIN' });
}

/**
 * Opens a stream, authenticates with the mechanism, and closes. Resolves with success or the
 * failure condition (SCRAM: also `server-signature-mismatch` when the server could not prove it
 * knows the credentials).
 */
export async function saslLogin(o: LoginOptions & { mechanism: Mechanism }): Promise<LoginResult> {
  const started = performance.now();
  const stream = await ClientStream.open(o);
  try {
    const outcome = o.mechanism === 'PLAIN' ? await stream.authenticate(o.username, o.password) : await stream.authenticateScram(o.username, o.password);
    return outcome === true ? { ok: true, elapsedMs: performance.now() - started } : { ok: false, condition: outcome, elapsedMs: performance.now() - started };
  } finally {
    await stream.close();
  }
}

/** Milliseconds from starting to connect until `<stream:features/>` arrive. */
export async function timeToStreamFeatures(o: ServerAddress): Promise<number> {
  const started = performance.now();
  const stream = await ClientStream.open(o);
  const elapsed = performance.now() - started;
  await stream.close();
  return elapsed;
}

/**
 * In-band registration (XEP-0077) on a fresh, unauthenticated stream. Resolves with the server's
 * reply to the registration `<iq/>` (result or error).
 */
export async function registerAccount(o: LoginOptions): Promise<Element> {
  const stream = await ClientStream.open(o);
  try {
    const id = 'register-1';
    return await stream.request(
      `<iq type='set' id='${id}'><query xmlns='jabber:iq:register'><username>${escapeText(o.username)}</username><password>${escapeText(o.password)}</password></query></iq>`,
      id,
    );
  } finally {
    await stream.close();
  }
}

/** A logged-in, bound client session. */
export class XmppSession {
  private nextId = 0;

  private constructor(
    private readonly stream: ClientStream,
    /** The full JID the server bound. */
    readonly jid: string,
  ) {}

  /** SASL PLAIN, stream restart, resource binding. Rejects (with `.condition`) when the login fails. */
  static async login(o: LoginOptions): Promise<XmppSession> {
    const stream = await ClientStream.open(o);
    try {
      const outcome = await stream.authenticate(o.username, o.password);
      if (outcome !== true) throw Object.assign(new Error(`login of ${o.username} failed: ${outcome}`), { condition: outcome });
      await stream.restart();
      const reply = await stream.request(`<iq type='set' id='bind-1'><bind xmlns='${NS_BIND}'><resource>e2e</resource></bind></iq>`, 'bind-1');
      const jid = reply.getChild('bind', NS_BIND)?.getChildText('jid');
      if (reply.attrs.type !== 'result' || !jid) throw new Error(`resource binding failed: ${reply.toString()}`);
      return new XmppSession(stream, jid);
    } catch (error) {
      await stream.close();
      throw error;
    }
  }

  /**
   * Sends an `<iq/>` given as raw XML (an `id` is added unless it has one) and resolves with the
   * reply, whether `result` or `error` (see `stanzaErrorCondition`).
   */
  async iq(raw: string): Promise<Element> {
    const el = parseOne(raw);
    if (el.name !== 'iq') throw new Error(`not an iq: ${raw}`);
    el.attrs.id ??= `e2e-${++this.nextId}`;
    return this.stream.request(el.toString(), el.attrs.id);
  }

  /** Closes the stream (`</stream:stream>`) and the connection. */
  close(): Promise<void> {
    return this.stream.close();
  }
}

/** The defined condition of a stanza error (`<error><conflict xmlns='...stanzas'/></error>`), if any. */
export function stanzaErrorCondition(stanza: Element): string | undefined {
  return stanza
    .getChild('error')
    ?.getChildElements()
    .find((child) => child.attrs.xmlns === NS_STANZAS)?.name;
}

type Incoming = { kind: 'element'; el: Element } | { kind: 'closed'; reason: string };

/** One TCP connection carrying an XMPP client stream; hands out top-level elements in order. */
class ClientStream {
  private readonly decoder = new StringDecoder('utf8');
  private parser!: XmlParser;
  private readonly queue: Incoming[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  /** Whether our stream header is open (false after SASL success, until the restart). */
  private streamOpen = false;
  private readonly deadline: number;
  /** Replies awaited by id: the reply, or why the stream ended first. */
  private readonly pendingIq = new Map<string, (reply: Element | string) => void>();
  private readerStarted = false;
  private features: Element | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly domain: string,
    /** For opening and logging in, all told; and for each iq afterwards. */
    private readonly timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs;
    socket.on('data', (chunk: Buffer) => this.parser.write(this.decoder.write(chunk)));
    socket.on('close', () => this.push({ kind: 'closed', reason: 'connection-closed' }));
    socket.on('error', () => {}); // 'close' follows
  }

  /** Connects, opens the stream and waits for its features. */
  static async open(o: ServerAddress): Promise<ClientStream> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const socket = connect({ host: o.host, port: o.port });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => socket.destroy(new Error(`connecting to ${o.host}:${o.port} timed out`)), timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const stream = new ClientStream(socket, o.domain, timeoutMs);
    try {
      await stream.restart();
    } catch (error) {
      await stream.close();
      throw error;
    }
    return stream;
  }

  /** (Re)opens the stream with a fresh parser and waits for `<stream:features/>`. */
  async restart(): Promise<void> {
    this.parser = new xmlPkg.Parser();
    this.parser.on('element', (el) => this.push({ kind: 'element', el }));
    this.parser.on('end', () => this.push({ kind: 'closed', reason: 'connection-closed' }));
    this.parser.on('error', (error) => this.push({ kind: 'closed', reason: `xml-error: ${error.message}` }));
    this.socket.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${this.domain}' version='1.0'>`,
    );
    this.streamOpen = true;
    const el = await this.nextElement();
    if (typeof el === 'string') throw new Error(`no stream features: ${el}`);
    if (el.name !== 'stream:features') throw new Error(`expected stream features, got ${el.toString()}`);
    this.features = el;
  }

  /** SASL PLAIN. true, or the failure condition. */
  async authenticate(username: string, password: string): Promise<true | string> {
    this.requireMechanism('PLAIN');
    const payload = Buffer.from(`\0${username}\0${password}`, 'utf8').toString('base64');
    this.socket.write(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${payload}</auth>`);
    const el = await this.nextElement();
    if (typeof el === 'string') return el;
    const outcome = this.saslOutcome(el);
    if (outcome === undefined) throw new Error(`unexpected answer to SASL auth: ${el.toString()}`);
    return outcome;
  }

  /**
   * SASL SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding (`n,,`). The password is
   * used as given (no SASLprep: the tests' passwords are ASCII). true, or the failure condition.
   */
  async authenticateScram(username: string, password: string): Promise<true | string> {
    this.requireMechanism('SCRAM-SHA-256');
    const clientNonce = randomBytes(18).toString('base64');
    const clientFirstBare = `n=${username.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${clientNonce}`;
    this.socket.write(`<auth xmlns='${NS_SASL}' mechanism='SCRAM-SHA-256'>${Buffer.from(`n,,${clientFirstBare}`).toString('base64')}</auth>`);
    const challenge = await this.nextElement();
    if (typeof challenge === 'string') return challenge;
    if (!challenge.is('challenge', NS_SASL)) return this.saslOutcome(challenge) ?? `unexpected answer to SCRAM auth: ${challenge.toString()}`;
    const serverFirst = Buffer.from(challenge.getText(), 'base64').toString('utf8');
    const fields = new Map(serverFirst.split(',').map((part) => [part.slice(0, 1), part.slice(2)] as const));
    const nonce = fields.get('r') ?? '';
    const salt = Buffer.from(fields.get('s') ?? '', 'base64');
    const iterations = Number(fields.get('i'));
    if (!nonce.startsWith(clientNonce) || salt.length === 0 || !Number.isInteger(iterations) || iterations < 1)
      throw new Error(`malformed SCRAM server-first-message: ${serverFirst}`);
    const salted = saltedPassword(password, salt, iterations);
    const clientKey = hmac(salted, 'Client Key');
    const storedKey = createHash('sha256').update(clientKey).digest();
    const clientFinalWithoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`;
    const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((byte, i) => byte ^ signature[i]!));
    this.socket.write(`<response xmlns='${NS_SASL}'>${Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`).toString('base64')}</response>`);
    const el = await this.nextElement();
    if (typeof el === 'string') return el;
    const outcome = this.saslOutcome(el);
    if (outcome === undefined) throw new Error(`unexpected answer to SCRAM response: ${el.toString()}`);
    if (outcome !== true) return outcome;
    // The server proves it holds the credentials too (v=ServerSignature, in <success/>).
    const verifier = /(?:^|,)v=([^,]*)/.exec(Buffer.from(el.getText(), 'base64').toString('utf8'))?.[1] ?? '';
    const expected = hmac(hmac(salted, 'Server Key'), authMessage);
    const given = Buffer.from(verifier, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected) ? true : 'server-signature-mismatch';
  }

  private requireMechanism(mechanism: Mechanism): void {
    const mechanisms =
      this.features
        ?.getChild('mechanisms', NS_SASL)
        ?.getChildren('mechanism')
        .map((m) => m.getText()) ?? [];
    if (!mechanisms.includes(mechanism)) throw new Error(`server offers no SASL ${mechanism} (offers: ${mechanisms.join(' ') || 'nothing'})`);
  }

  /** true for `<success/>`, the condition for a failure or a stream error; undefined for anything else. */
  private saslOutcome(el: Element): true | string | undefined {
    if (el.is('success', NS_SASL)) {
      this.streamOpen = false; // the server now expects a new stream header
      return true;
    }
    if (el.is('failure', NS_SASL)) return el.getChildElements().find((child) => child.name !== 'text')?.name ?? 'failure-without-condition';
    if (el.name === 'stream:error') return streamErrorCondition(el);
    return undefined;
  }

  /** Sends a stanza and resolves with the iq reply carrying `id`. */
  request(stanza: string, id: string): Promise<Element> {
    this.startReader();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIq.delete(id);
        reject(new Error(`no reply to iq ${id} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pendingIq.set(id, (reply) => {
        clearTimeout(timer);
        this.pendingIq.delete(id);
        if (typeof reply === 'string') reject(new Error(`stream ended before the reply to iq ${id}: ${reply}`));
        else resolve(reply);
      });
      this.socket.write(stanza);
    });
  }

  /** Sends `</stream:stream>`, waits briefly for the server to close, then destroys the socket. */
  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    if (this.socket.writable) {
      if (this.streamOpen) this.socket.end('</stream:stream>');
      else this.socket.end();
    }
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    const timer = setTimeout(() => this.socket.destroy(), 2000);
    await closed;
    clearTimeout(timer);
  }

  /** After login, stanzas are dispatched to waiting requests instead of being queued. */
  private startReader(): void {
    if (this.readerStarted) return;
    this.readerStarted = true;
    void (async () => {
      for (;;) {
        const el = await this.nextElement(Infinity);
        if (typeof el === 'string') {
          for (const deliver of [...this.pendingIq.values()]) deliver(el);
          return;
        }
        if (el.name === 'stream:error') {
          for (const deliver of [...this.pendingIq.values()]) deliver(`stream error ${streamErrorCondition(el)}`);
          continue;
        }
        const id = el.attrs.id;
        if (el.name === 'iq' && (el.attrs.type === 'result' || el.attrs.type === 'error') && id !== undefined) {
          this.pendingIq.get(id)?.(el);
        } else if (el.name === 'iq' && (el.attrs.type === 'get' || el.attrs.type === 'set')) {
          // Be a polite client: we serve nothing.
          const to = el.attrs.from ? ` to='${escapeAttr(el.attrs.from)}'` : '';
          this.socket.write(
            `<iq type='error' id='${escapeAttr(id ?? '')}'${to}><error type='cancel'><service-unavailable xmlns='${NS_STANZAS}'/></error></iq>`,
          );
        }
      }
    })();
  }

  /** The next top-level element, or the reason the stream ended (a string). */
  private async nextElement(deadline = this.deadline): Promise<Element | string> {
    while (this.queue.length === 0) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) return 'client-timeout';
      await new Promise<void>((resolve) => {
        const timer = remaining === Infinity ? undefined : setTimeout(resolve, remaining);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    const next = this.queue[0]!;
    if (next.kind === 'closed') return next.reason; // stays queued: the stream stays ended
    this.queue.shift();
    return next.el;
  }

  private push(item: Incoming): void {
    if (this.ended) return;
    if (item.kind === 'closed') this.ended = true;
    this.queue.push(item);
    this.wake?.();
  }
}

/**
 * PBKDF2-HMAC-SHA-256 of the password, remembered per (password, salt, iterations) as a client
 * that stores its SCRAM keys does: otherwise the client's own hashing, thousands of iterations
 * per login, would be what a load test measures.
 */
const saltedPasswords = new Map<string, Buffer>();
function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${iterations}:${salt.toString('base64')}:${password}`;
  let salted = saltedPasswords.get(key);
  if (!salted) {
    salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
    if (saltedPasswords.size > 10_000) saltedPasswords.clear();
    saltedPasswords.set(key, salted);
  }
  return salted;
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function streamErrorCondition(el: Element): string {
  return el.getChildElements().find((child) => child.name !== 'text')?.name ?? 'stream-error';
}

function escapeText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}
