import { createConnection, createServer } from 'node:net';

export const LOOPBACK = '127.0.0.1';

/** `count` distinct free loopback ports (held open together, then released; good enough for tests). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, LOOPBACK, () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

export function canConnect(port: number, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function randomSecret(): string {
  return `s-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
