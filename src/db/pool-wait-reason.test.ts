import { createServer, type Socket } from 'node:net';
import { expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { MysqlNodeSet } from './mysql-node-set.js';

// a server that accepts TCP and never sends its handshake: a MariaDB frozen (SIGSTOP) before it
// answered. A local socket, not a mock of MariaDB: no byte of the protocol is spoken.
it("a full pool whose connects the server never completes is the node's fault, not busy calls", async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const nodes = new MysqlNodeSet({
    user: 'u',
    password: () => 'p',
    logger: silentLogger,
    connectionLimit: 2,
    connectTimeoutMs: 5000,
    acquireTimeoutMs: 400,
  });
  try {
    const node = nodes.acquire({ host: '127.0.0.1', port, database: 'd' });
    const failure = (e: unknown) => e as DependencyUnavailableError;
    const first = await Promise.all([1, 2].map(() => node.run(async () => 1).catch(failure)));
    for (const error of first) {
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error).toMatchObject({
        busy: false,
        reason: expect.stringMatching(/^no new connection within/),
      });
    }
    // the pool is full of the two connects, still pending; no call of this process holds one
    const third = failure(await node.run(async () => 1).catch((e: unknown) => e));
    expect(third).toBeInstanceOf(DependencyUnavailableError);
    expect(third).toMatchObject({
      busy: false,
      reason: expect.stringMatching(
        /2 of the pool's connections still connecting: the server did not complete/,
      ),
    });
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
    await nodes.close();
  }
}, 20_000);
