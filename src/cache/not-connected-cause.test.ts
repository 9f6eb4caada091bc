import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../resilience/errors.js';
import { ownResourceShortage } from '../resilience/own-resources.js';
import { type NotConnectedCause, notConnectedCause } from './not-connected-cause.js';
import { failFastRedisOptions } from './redis.js';

const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

/** a client that never connects by itself (lazy), as one between reconnect attempts */
function client(): Redis {
  const redis = new Redis({ ...failFastRedisOptions(), lazyConnect: true, port: 1 });
  redis.on('error', () => {});
  clients.push(redis);
  return redis;
}

function connectError(code: string): Error {
  return Object.assign(new Error(`connect ${code} 127.0.0.1:6380 - Local (undefined:undefined)`), {
    code,
    errno: code === 'EMFILE' ? -24 : -111,
    syscall: 'connect',
  });
}

describe('notConnectedCause', () => {
  it('a command refused while not connected, after a connect failed for want of a descriptor, tells the shortage', async () => {
    const redis = client();
    const withShortage = notConnectedCause(redis);
    redis.emit('error', connectError('EMFILE'));
    const refused = await redis.get('k').catch((e: unknown) => e);
    expect(ownResourceShortage(refused)).toBeUndefined();
    const told = withShortage(refused);
    expect(ownResourceShortage(told)).toBe('EMFILE');
    expect((told as Error).message).toMatch(/Stream isn't writeable.*\(connecting failed: connect EMFILE/);
    expect((told as AggregateError).errors[0]).toBe(refused);
  });

  it('gives the error back unchanged after a connect failing otherwise, once ready again, or with no failure', async () => {
    const redis = client();
    const withShortage = notConnectedCause(redis);
    const refused = await redis.get('k').catch((e: unknown) => e);
    expect(withShortage(refused)).toBe(refused);
    redis.emit('error', connectError('EMFILE'));
    redis.emit('error', connectError('ECONNREFUSED'));
    expect(withShortage(refused)).toBe(refused);
    redis.emit('error', connectError('EMFILE'));
    redis.emit('ready');
    expect(withShortage(refused)).toBe(refused);
  });

  it('a command refused within the grace after a ready connection dropped counts for neither side, until a reconnect fails', async () => {
    const redis = client();
    let now = 0;
    const withCause = notConnectedCause(redis, { graceMs: 500, now: () => now });
    const refused = await redis.get('k').catch((e: unknown) => e);
    // never ready: a refusal is given back as it is (a client that cannot connect at all)
    expect(withCause(refused)).toBe(refused);
    redis.emit('ready');
    now = 1000;
    expect(withCause.reconnectAtOnce()).toBe(true);
    redis.emit('close');
    now = 1499;
    const told = withCause(refused);
    expect(told).toBeInstanceOf(DependencyError);
    expect((told as DependencyError).busy).toBe(true);
    expect((told as DependencyError).cause).toBe(refused);
    expect((told as Error).message).toMatch(/Stream isn't writeable.*reconnecting/);
    // past the grace: counted (a reconnect that hangs)
    now = 1500;
    expect(withCause(refused)).toBe(refused);
    // a reconnect attempt that failed ends the grace at once (a Redis that is down)
    redis.emit('ready');
    now = 7000;
    redis.emit('error', connectError('ECONNRESET'));
    redis.emit('close');
    now = 7001;
    expect(withCause(refused)).toBeInstanceOf(DependencyError);
    redis.emit('error', connectError('ECONNREFUSED'));
    expect(withCause(refused)).toBe(refused);
    // a close of a connection that was never ready (an attempt) starts no grace
    redis.emit('close');
    expect(withCause(refused)).toBe(refused);
  });

  it('gives no grace to a drop soon after the handshake, a second drop within the spacing, or a drop of its own', () => {
    const redis = client();
    let now = 0;
    const withCause = notConnectedCause(redis, { now: () => now });
    const refused = new Error("Stream isn't writeable and enableOfflineQueue options is false");
    const drop = (readyFor: number, own = false) => {
      redis.emit('ready');
      now += readyFor;
      if (own) withCause.forgoNextGrace();
      const atOnce = withCause.reconnectAtOnce();
      redis.emit('close');
      now += 1;
      return [atOnce, withCause(refused) instanceof DependencyError];
    };
    expect(drop(999)).toEqual([false, false]);
    expect(drop(1000)).toEqual([true, true]);
    // the next drop, 1 s later: within the 5 s spacing
    expect(drop(1000)).toEqual([false, false]);
    now += 5000;
    expect(drop(1000, true)).toEqual([false, false]);
    now += 5000;
    expect(drop(1000)).toEqual([true, true]);
    // a replacement asked while reconnecting (no close follows) does not outlive the handshake
    now += 5000;
    withCause.forgoNextGrace();
    expect(drop(1000)).toEqual([true, true]);
  });
});

describe('a Redis client of failFastRedisOptions with notConnectedCause', () => {
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
  });

  /** a server that answers the handshake (CLIENT …, INFO) and then `afterReady(socket, n)` for the n-th connection */
  async function handshakeServer(
    afterReady: (socket: Socket, n: number) => void,
  ): Promise<{ port: number; accepted: () => number }> {
    let accepted = 0;
    server = createServer((socket) => {
      const n = ++accepted;
      socket.on('error', () => {});
      socket.on('data', (d) => {
        const text = d.toString();
        for (const _ of text.matchAll(/\$6\r\nclient\r\n/gi)) socket.write('+OK\r\n');
        if (/\$4\r\ninfo\r\n/i.test(text)) {
          socket.write('$11\r\nloading:0\r\n\r\n');
          afterReady(socket, n);
        }
        if (/\$4\r\nping\r\n/i.test(text)) socket.write('+PONG\r\n');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return { port: (server!.address() as { port: number }).port, accepted: () => accepted };
  }

  function storeLikeClient(port: number) {
    let cause: NotConnectedCause | undefined;
    const redis = new Redis({
      ...failFastRedisOptions({ reconnectAtOnce: () => cause?.reconnectAtOnce() ?? false }),
      port,
    });
    redis.on('error', () => {});
    clients.push(redis);
    cause = notConnectedCause(redis);
    return { redis, withCause: cause };
  }

  it('a server that drops every connection just after its handshake: backoff, and the refusals count (a review)', async () => {
    const { port, accepted } = await handshakeServer((socket) => setTimeout(() => socket.destroy(), 1));
    const { redis, withCause } = storeLikeClient(port);
    const refused = new Error("Stream isn't writeable and enableOfflineQueue options is false");
    const t0 = performance.now();
    let busy = 0;
    let counted = 0;
    while (performance.now() - t0 < 1500) {
      await new Promise((r) => setTimeout(r, 2));
      if (redis.status === 'ready') continue;
      if (withCause(refused) instanceof DependencyError) busy++;
      else counted++;
    }
    // before: ~250 connections a second, every refusal `busy`
    expect(accepted()).toBeLessThan(30);
    expect(busy).toBe(0);
    expect(counted).toBeGreaterThan(0);
  });

  it('a steady connection dropped once is opened again at once, its refusals meanwhile not counted', async () => {
    const { port, accepted } = await handshakeServer((socket, n) => {
      if (n === 1) setTimeout(() => socket.destroy(), 1100);
    });
    const { redis, withCause } = storeLikeClient(port);
    await new Promise<void>((r) => redis.once('ready', () => r()));
    // ioredis tells each reconnect's delay: at once, not the backoff's first 100 ms
    const delay = new Promise<number>((r) => redis.once('reconnecting', (ms: number) => r(ms)));
    await new Promise<void>((r) => redis.once('close', () => r()));
    const refused = await redis.ping().catch((e: unknown) => e);
    expect(withCause(refused)).toBeInstanceOf(DependencyError);
    expect(await delay).toBe(0);
    await new Promise<void>((r) => redis.once('ready', () => r()));
    expect(accepted()).toBe(2);
  });
});
