import { createServer, type Socket } from 'node:net';
import mysql from 'mysql2';
import { expect, it } from 'vitest';
import { silentLogger } from '../observability/logger.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { MysqlNodeSet } from './mysql-node-set.js';

/** pools of 2 connections (unless given) that wait 400 ms for one and give a connect 5 s */
const testPools = (
  options: { connectionLimit?: number; connectTimeoutMs?: number; acquireTimeoutMs?: number } = {},
) =>
  new MysqlNodeSet({
    user: 'u',
    password: () => 'p',
    logger: silentLogger,
    connectionLimit: 2,
    connectTimeoutMs: 5000,
    acquireTimeoutMs: 400,
    ...options,
  });

// a server that accepts TCP and never sends its handshake: a MariaDB frozen (SIGSTOP) before it
// answered. A local socket, not a mock of MariaDB: no byte of the protocol is spoken.
it("a full pool whose connects the server never completes is the node's fault, not busy calls", async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const nodes = testPools();
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
      reason: expect.stringMatching(/2 of the pool's connections begun before the wait did not complete/),
    });
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
    await nodes.close();
  }
}, 20_000);

// the defaults in proportion (a connect timeout of 2,000 ms, a wait of 1,900): a call queued 100
// ms after the connects began outlives them; at their timeout mysql2 begins new ones for the
// queue, and the wait ends with only those connecting (a review: told "busy with a call")
it("a wait that outlives its pool's stuck connects is still the node's fault", async () => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const nodes = testPools({ connectTimeoutMs: 500, acquireTimeoutMs: 450 });
  try {
    const node = nodes.acquire({ host: '127.0.0.1', port, database: 'd' });
    const first = [1, 2].map(() => node.run(async () => 1).catch((e: unknown) => e));
    await new Promise((r) => setTimeout(r, 100));
    const third = (await node.run(async () => 1).catch((e: unknown) => e)) as DependencyUnavailableError;
    await Promise.all(first);
    expect(third).toBeInstanceOf(DependencyUnavailableError);
    expect(third).toMatchObject({
      busy: false,
      reason: expect.stringMatching(/connections begun before the wait did not complete their connect/),
    });
  } finally {
    for (const socket of sockets) socket.destroy();
    server.close();
    await nodes.close();
  }
}, 20_000);

/** mysql2's own server side of the protocol: enough of a server to hand out connections */
interface ServerConnection {
  stream: Socket;
  sequenceId: number;
  on(event: string, listener: (...args: never[]) => void): void;
  serverHandshake(options: Record<string, number | string>): void;
  writeOk(): void;
  writeError(args: { code: number; message: string }): void;
  writeTextResult(rows: Record<string, string>[], columns: Record<string, number | string>[]): void;
}

/**
 * mysql2's own server on a free local port: each connection is given to `greet` with its number
 * (from 1) and `serve`, which sends the handshake; served ones answer statements with OK and the
 * version query with MariaDB's
 */
async function mysqlServer(greet: (conn: ServerConnection, id: number, serve: () => void) => void) {
  const connections: ServerConnection[] = [];
  const server = (
    mysql as unknown as {
      createServer(): {
        on(event: 'connection', listener: (c: ServerConnection) => void): void;
        listen(port: number, host: string, done: () => void): void;
        close(): void;
        _server: { address(): { port: number } };
      };
    }
  ).createServer();
  server.on('connection', (conn) => {
    connections.push(conn);
    const id = connections.length;
    conn.on('error', () => {});
    conn.on('stmt_prepare', () => {
      conn.sequenceId = 1;
      conn.writeOk();
    });
    conn.on('query', ((sql: string) => {
      conn.sequenceId = 1;
      if (/VERSION\(\)/.test(sql))
        conn.writeTextResult(
          [{ v: '10.11.6-MariaDB' }],
          [
            {
              name: 'v',
              columnType: 253,
              columnLength: 64,
              characterSet: 33,
              flags: 0,
              decimals: 0,
              catalog: 'def',
              schema: '',
              table: '',
              orgTable: '',
              orgName: 'v',
            },
          ],
        );
      else conn.writeOk();
    }) as (...args: never[]) => void);
    greet(conn, id, () =>
      conn.serverHandshake({
        protocolVersion: 10,
        serverVersion: '10.11.6-MariaDB',
        connectionId: id,
        statusFlags: 2,
        characterSet: 8,
        capabilityFlags: 0xffffff & ~0x800 & ~0x20,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    connections,
    port: server._server.address().port,
    close: () => {
      for (const c of connections) c.stream.destroy();
      server.close();
    },
  };
}

// a healthy server whose handshakes take 50 ms: a busy pool loses a connection 30 ms before a
// queued call's wait ends, and mysql2 begins a connect in its place (a review: that wait was
// blamed on the node, and counted by its breaker, though the connect completed soon after)
it("a busy pool's wait is not the node's fault for a handshake begun during it", async () => {
  const { connections, port, close } = await mysqlServer((_conn, id, serve) => {
    setTimeout(serve, id >= 3 ? 50 : 0);
  });
  const nodes = testPools();
  try {
    const node = nodes.acquire({ host: '127.0.0.1', port, database: 'd' });
    let inside = 0;
    const holding = [1, 2].map(() =>
      node
        .run(async () => {
          inside++;
          await new Promise((resolve) => setTimeout(resolve, 1200)); // the pool busy with long calls
        })
        .catch(() => {}),
    );
    while (inside < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    const queued = node.run(async () => 1).catch((e: unknown) => e);
    setTimeout(() => connections[1]?.stream.destroy(), 370);
    const outcome = await queued;
    expect(outcome).toBeInstanceOf(DependencyUnavailableError);
    expect(outcome).toMatchObject({
      busy: true,
      reason: expect.stringMatching(/^no free connection within 400 ms/),
    });
    await Promise.all(holding);
  } finally {
    close();
    await nodes.close();
  }
}, 20_000);

// a server at max_connections: connection 1 is live; every later connect is refused with 1040
// (connection 2 after 60 ms, the time of a slow handshake). A call that begins while connection 2
// is in its handshake, is refused itself, holds at the live connection (holdAtLive: `busy`) and
// times out while the pool is busy: connection 2 was refused (the server answered), which is not
// a connect the server failed to complete (a review: it was counted so, and blamed the node).
it('a wait held at a refusal for max_connections is busy, though a connect begun before it was refused', async () => {
  const { port, close } = await mysqlServer((conn, id, serve) => {
    if (id === 1) serve();
    else
      setTimeout(() => conn.writeError({ code: 1040, message: 'Too many connections' }), id === 2 ? 60 : 0);
  });
  const nodes = testPools({ connectionLimit: 3 });
  try {
    const node = nodes.acquire({ host: '127.0.0.1', port, database: 'd' });
    let inside = false;
    const holding = node
      .run(async () => {
        inside = true;
        await new Promise((resolve) => setTimeout(resolve, 1200));
      })
      .catch(() => {});
    while (!inside) await new Promise((resolve) => setTimeout(resolve, 5));
    // X begins connection 2 (refused at 60 ms)
    const x = node.run(async () => 1).catch((e: unknown) => e);
    await new Promise((resolve) => setTimeout(resolve, 15));
    // Y begins while connection 2 is in its handshake
    const y = (await node.run(async () => 1).catch((e: unknown) => e)) as DependencyUnavailableError;
    await x;
    expect(y).toBeInstanceOf(DependencyUnavailableError);
    expect(y).toMatchObject({ busy: true });
    await holding;
  } finally {
    close();
    await nodes.close();
  }
}, 20_000);
