import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { failFastRedisOptions } from './redis.js';
import { replaceHungConnection } from './replace-hung-connection.js';

/**
 * A TCP server speaking just enough RESP for GET (answers `$-1`, a nil). A test silences a
 * connection by removing its `data` listener: it then reads and never replies, what a blackholed
 * path looks like from the client (the socket open, no answer, no RST).
 */
function fakeRedis() {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      // one reply per command (each a RESP array: a line starting with `*`)
      const commands = chunk
        .toString('latin1')
        .split('\r\n')
        .filter((l) => l.startsWith('*')).length;
      socket.write('$-1\r\n'.repeat(commands));
    });
  });
  return {
    server,
    sockets,
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      ),
  };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function setup() {
  const fake = fakeRedis();
  const port = await fake.listen();
  const redis = new Redis(`redis://127.0.0.1:${port}`, {
    ...failFastRedisOptions({ commandTimeoutMs: 100 }),
    enableReadyCheck: false,
    retryStrategy: () => 10,
  });
  redis.on('error', () => {});
  const replaced: number[] = [];
  replaceHungConnection(redis, { minIntervalMs: 50, onReplace: () => replaced.push(Date.now()) });
  cleanups.push(() => {
    redis.disconnect();
    for (const s of fake.sockets) s.destroy();
    fake.server.close();
  });
  await new Promise<void>((r) => redis.once('ready', () => r()));
  return { fake, redis, replaced };
}

describe('replaceHungConnection', () => {
  it('replaces a connection that answered nothing since a command that timed out; the new one answers', async () => {
    const { fake, redis, replaced } = await setup();
    expect(await redis.get('k')).toBeNull();
    // the path goes dark for this connection: it never answers again (a new one is answered)
    fake.sockets[0]!.removeAllListeners('data');
    await expect(redis.get('k')).rejects.toThrow('Command timed out');
    await new Promise((r) => setTimeout(r, 100));
    expect(replaced).toHaveLength(1);
    expect(fake.sockets).toHaveLength(2);
    expect(await redis.get('k')).toBeNull();
  });

  it('keeps a connection that answered something after the timed-out command was sent', async () => {
    const { fake, redis, replaced } = await setup();
    const socket = fake.sockets[0]!;
    // replies come late: the first command's answer arrives after the second was sent, and the
    // second times out (a slow server, not a stuck connection)
    socket.removeAllListeners('data');
    let pending = 0;
    socket.on('data', (chunk) => {
      pending += chunk
        .toString('latin1')
        .split('\r\n')
        .filter((l) => l.startsWith('*')).length;
    });
    const first = redis.get('a').catch((e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 60));
    const second = redis.get('b').catch((e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 20));
    socket.write('$-1\r\n'); // the first one's answer, 80 ms after it was sent
    pending--;
    expect(await first).toBeNull();
    expect(await second).toBe('Command timed out');
    await new Promise((r) => setTimeout(r, 50));
    expect([replaced.length, fake.sockets.length, pending]).toEqual([0, 1, 1]);
  });

  it('keeps a connection whose answer came while the event loop was blocked past the timeout', async () => {
    const { fake, redis, replaced } = await setup();
    const socket = fake.sockets[0]!;
    // the server answers at once, then the process's loop is blocked for 150 ms (over the 100 ms
    // timeout): the next turn runs the command's timeout before it reads the waiting answer
    socket.removeAllListeners('data');
    socket.on('data', () => {
      socket.write('$-1\r\n');
      const until = performance.now() + 150;
      while (performance.now() < until) {
        // blocked, as a long synchronous start-up import or GC would
      }
    });
    expect(await redis.get('k').catch((e: Error) => e.message)).toBe('Command timed out');
    await new Promise((r) => setTimeout(r, 50));
    expect([replaced.length, fake.sockets.length]).toEqual([0, 1]);
  });
});
