// A local HTTP account service for the auth-http tests: the API auth-http expects, plus users
// whose requests fail in each way a real service can (error status, non-JSON, wrong JSON, a
// redirect, no answer until released, SCRAM credentials that are malformed in each way).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ServiceRequest {
  authorization: string | undefined;
  contentType: string | undefined;
  body: Record<string, unknown>;
}

/** What the service answers a scram request with, as JSON fields (base64 strings). */
export interface ScramJson {
  iterations: unknown;
  salt: unknown;
  storedKey: unknown;
  serverKey: unknown;
}

/** Users whose scram answer is `{"result": true, ...}` with these fields broken. */
export const MALFORMED_SCRAM: Record<string, (good: ScramJson) => Partial<ScramJson>> = {
  'scram-short-key': (good) => ({ ...good, storedKey: Buffer.alloc(20, 7).toString('base64') }),
  'scram-unpadded': (good) => ({ ...good, serverKey: String(good.serverKey).replace(/=+$/, '') }),
  'scram-not-base64': (good) => ({ ...good, salt: 'not base64!' }),
  'scram-base64url': (good) => ({ ...good, storedKey: Buffer.alloc(32, 0xfb).toString('base64url') }),
  'scram-noncanonical': (good) => ({ ...good, salt: 'QR==' }),
  'scram-empty-salt': (good) => ({ ...good, salt: '' }),
  'scram-iterations-string': (good) => ({ ...good, iterations: '4096' }),
  'scram-iterations-zero': (good) => ({ ...good, iterations: 0 }),
  'scram-iterations-huge': (good) => ({ ...good, iterations: 10_000_001 }),
  'scram-no-keys': (good) => ({ iterations: good.iterations, salt: good.salt }),
};

export class AccountService {
  readonly accounts = new Map<string, string>();
  /** SCRAM credentials per `user@server` and hash, e.g. `alice@example.com sha-256`. */
  readonly scram = new Map<string, ScramJson>();
  readonly requests: ServiceRequest[] = [];
  /** Requests for user `hang` wait here until release() (or the client gives up). */
  private held: Array<() => void> = [];
  private heldListeners: Array<() => void> = [];
  private server!: Server;
  port = 0;

  constructor(readonly token: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/xmpp/auth`;
  }

  get heldCount(): number {
    return this.held.length;
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ([status, body, headers]) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(body);
        },
        () => res.destroy(),
      );
    });
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Resolves when `count` requests are being held. */
  whenHeld(count: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.held.length >= count) resolve();
        else this.heldListeners.push(check);
      };
      check();
    });
  }

  release(): void {
    for (const resume of this.held.splice(0)) resume();
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: IncomingMessage): Promise<[number, string, Record<string, string>?]> {
    let text = '';
    for await (const chunk of req) text += chunk;
    const body = JSON.parse(text) as Record<string, unknown>;
    this.requests.push({ authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
    if (req.method !== 'POST' || req.url !== '/xmpp/auth') return [404, '{}'];
    if (req.headers.authorization !== `Bearer ${this.token}`) return [401, '{"error":"unauthorized"}'];
    const { kind, user, server, password, hash } = body as { kind: string; user: string; server: string; password?: string; hash?: string };
    const key = `${user}@${server}`;
    const broken = MALFORMED_SCRAM[user];
    if (kind === 'scram' && broken) {
      const good = { iterations: 4096, salt: 'c2FsdA==', storedKey: Buffer.alloc(32, 1).toString('base64'), serverKey: Buffer.alloc(32, 2).toString('base64') };
      return [200, JSON.stringify({ result: true, ...broken(good) })];
    }
    switch (user) {
      case 'err500':
        return [500, '{"result": false}'];
      case 'garbage':
        // A broken service echoing what it was sent: auth-http must not log it.
        return [200, `<html>${String(password)}</html>`, { 'content-type': 'text/html' }];
      case 'noresult':
        return [200, '{"ok": true}'];
      case 'stringresult':
        return [200, '{"result": "false"}'];
      case 'redirect':
        return [302, '{}', { location: 'http://127.0.0.1:1/elsewhere' }];
      case 'hang':
        await new Promise<void>((resolve) => {
          this.held.push(resolve);
          for (const listener of this.heldListeners.splice(0)) listener();
        });
        return [200, JSON.stringify({ result: this.accounts.get(key) === password })];
    }
    if (kind === 'scram') {
      const credentials = this.scram.get(`${key} ${hash}`);
      return [200, JSON.stringify(credentials ? { result: true, ...credentials } : { result: false })];
    }
    const result = (() => {
      switch (kind) {
        case 'auth':
          return this.accounts.get(key) === password;
        case 'isuser':
          return this.accounts.has(key);
        case 'setpass':
          return this.accounts.has(key) && Boolean(this.accounts.set(key, String(password)));
        case 'tryregister':
          return !this.accounts.has(key) && Boolean(this.accounts.set(key, String(password)));
        case 'removeuser':
          return this.accounts.delete(key);
        default:
          return false;
      }
    })();
    return [200, JSON.stringify({ result })];
  }
}
