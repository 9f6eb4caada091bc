import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import { createServer as createMysqlServer } from 'mysql2';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ShardConfig } from '../src/config/schema.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { connectShardServer, ServerUnreachableError, unreachableReason } from './shard-server.js';

const ENV = { SHARDGATE_DB_USER: 'shardgate', SHARDGATE_DB_PASSWORD: 'pw' };
const shardAt = (port: number): ShardConfig => ({
  master: { host: '127.0.0.1', port },
  replicas: [],
  database: 'shardgate',
});

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** a server that takes TCP connections and never says a word: a frozen mariadbd (SIGSTOP) */
async function silentServer(): Promise<{ port: number; open: () => number }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const port = await listening(server);
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port, open: () => sockets.size };
}

/**
 * A MySQL server (mysql2's own) that logs anyone in and answers the statements `answered`
 * accepts, and none other: a server frozen after the login.
 */
async function stallingServer(answered: (sql: string) => boolean): Promise<number> {
  // mysql2 numbers its fake server's answers in its own way, and prints "packets out of order"
  const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
  closers.push(() => quiet.mockRestore());
  const connections: { stream: Socket }[] = [];
  const server = createMysqlServer((conn) => {
    connections.push(conn as unknown as { stream: Socket });
    conn.serverHandshake({
      protocolVersion: 10,
      serverVersion: '10.11.0-MariaDB',
      connectionId: 1,
      statusFlags: 2,
      characterSet: 8,
      capabilityFlags: 0xffffff,
    });
    conn.on('error', () => {});
    // mysql2's server hands a SET statement to 'stmt_prepare', any other to 'query'
    for (const event of ['query', 'stmt_prepare'] as const) {
      (conn as unknown as NodeJS.EventEmitter).on(event, (sql: string) => {
        if (answered(sql)) conn.writeOk();
      });
    }
  });
  const tcp = (server as unknown as { _server: Server })._server;
  const port = await listening(tcp);
  closers.push(() => {
    for (const c of connections) c.stream.destroy();
    tcp.close();
  });
  return port;
}

describe('unreachableReason', () => {
  it('says a statement timed out, a connection failed, and nothing of an SQL error', () => {
    const timeout = Object.assign(new Error('Query inactivity timeout'), {
      code: 'PROTOCOL_SEQUENCE_TIMEOUT',
    });
    expect(unreachableReason(timeout, 3000)).toBe('did not answer within 3000 ms');
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(unreachableReason(reset)).toBe('unreachable: read ECONNRESET');
    const lost = Object.assign(new Error('Connection lost: The server closed the connection.'), {
      code: 'PROTOCOL_CONNECTION_LOST',
      fatal: true,
    });
    expect(unreachableReason(lost)).toBe('unreachable: Connection lost: The server closed the connection.');
    const closed = Object.assign(new Error("Can't add new command when connection is in closed state"), {
      fatal: true,
    });
    expect(unreachableReason(closed)).toMatch(/^unreachable: Can't add new command/);
    const sql = Object.assign(new Error('You have an error in your SQL syntax'), {
      code: 'ER_PARSE_ERROR',
      errno: 1064,
    });
    expect(unreachableReason(sql)).toBeUndefined();
  });
});

describe('connectShardServer', () => {
  it('gives up on a server that takes the connection but never logs in, within its bound, and keeps no socket', async () => {
    const server = await silentServer();
    const t0 = Date.now();
    const error = await connectShardServer(
      ENV,
      'shard-2',
      shardAt(server.port),
      shardAt(server.port).master,
      {
        connectTimeoutMs: 300,
      },
    ).catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(error).toBeInstanceOf(ServerUnreachableError);
    expect((error as UnreachableError).exitCode).toBe(2);
    expect((error as Error).message).toBe(
      `shard shard-2 (127.0.0.1:${server.port}) unreachable: no login within 300 ms (connect ETIMEDOUT)`,
    );
    await expect.poll(server.open, { timeout: 2000 }).toBe(0);
  });

  it('says a refused connection names the shard and address', async () => {
    const probe = createTcpServer();
    const port = await listening(probe);
    await new Promise((resolve) => probe.close(resolve));
    const error = await connectShardServer(ENV, 'shard-2', shardAt(port), shardAt(port).master).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnreachableError);
    expect(error).not.toBeInstanceOf(UserError);
    expect((error as Error).message).toMatch(
      new RegExp(`^shard shard-2 \\(127\\.0\\.0\\.1:${port}\\) unreachable: .*ECONNREFUSED`),
    );
  });

  it('bounds every statement: one the server does not answer is an UnreachableError, and so is every later one, at once; end() does not wait for the server', async () => {
    const port = await stallingServer((sql) => /sql_mode/i.test(sql));
    const connection = await connectShardServer(ENV, 'shard-2', shardAt(port), shardAt(port).master, {
      statementTimeoutMs: 300,
    });
    const t0 = Date.now();
    const first = await connection.query('START TRANSACTION').catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(first).toBeInstanceOf(ServerUnreachableError);
    expect((first as Error).message).toBe(`shard shard-2 (127.0.0.1:${port}) did not answer within 300 ms`);
    expect((first as ServerUnreachableError).server).toBe(`127.0.0.1:${port}`);
    const t1 = Date.now();
    const next = await connection.query('ROLLBACK').catch((e: unknown) => e);
    expect((next as Error).message).toBe((first as Error).message);
    await connection.end();
    expect(Date.now() - t1).toBeLessThan(200);
  });

  it("lets a statement give its own bound (a replica's wait for a position)", async () => {
    const port = await stallingServer((sql) => /sql_mode/i.test(sql));
    const connection = await connectShardServer(ENV, 'shard-2', shardAt(port), shardAt(port).master, {
      statementTimeoutMs: 5000,
    });
    const t0 = Date.now();
    const error = await connection
      .query({ sql: 'SELECT MASTER_GTID_WAIT(?, ?)', timeout: 200 }, ['0-1-1', 0.1])
      .catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect((error as Error).message).toMatch(/did not answer within 200 ms$/);
    connection.destroy();
  });
});
