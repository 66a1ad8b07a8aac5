import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { ListenAddress } from '../config/parsers.js';
import { checkHealth } from './health.js';
import type { ComponentMetrics, ComponentProbe } from './metrics.js';

export interface OpsServer {
  /** The port actually listened on (HTTP_LISTEN may say 0). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The operator's window: `GET /metrics` (Prometheus text format) and `GET /health` (200 or
 * 503, with a JSON body saying why). Nothing else, and nothing that takes a request body.
 */
export async function startOpsServer(listen: ListenAddress, metrics: ComponentMetrics, probe: ComponentProbe, log: Logger): Promise<OpsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (error: Error) => {
          log.error({ event: 'http.metrics-failed', err: error }, 'metrics could not be collected');
          res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
        },
      );
      return;
    }
    if (path === '/health') {
      const report = checkHealth(probe);
      res.writeHead(report.healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(`${JSON.stringify(report.body)}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /health\n');
  });
  server.keepAliveTimeout = 5000;
  server.listen(listen.port, listen.host.replace(/^\[(.*)\]$/, '$1'));
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([error]) => {
      throw new Error(`HTTP_LISTEN: cannot listen on ${listen.host}:${listen.port}: ${(error as Error).message}`);
    }),
  ]);
  const port = (server.address() as AddressInfo).port;
  log.info({ event: 'http.listening', host: listen.host, port }, 'serving /metrics and /health over HTTP');
  return {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
