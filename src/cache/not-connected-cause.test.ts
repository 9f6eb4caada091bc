import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { DependencyError } from '../resilience/errors.js';
import { ownResourceShortage } from '../resilience/own-resources.js';
import { notConnectedCause } from './not-connected-cause.js';
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
    redis.emit('close');
    now = 499;
    const told = withCause(refused);
    expect(told).toBeInstanceOf(DependencyError);
    expect((told as DependencyError).busy).toBe(true);
    expect((told as DependencyError).cause).toBe(refused);
    expect((told as Error).message).toMatch(/Stream isn't writeable.*reconnecting/);
    // past the grace: counted (a reconnect that hangs)
    now = 500;
    expect(withCause(refused)).toBe(refused);
    // a reconnect attempt that failed ends the grace at once (a Redis that is down)
    redis.emit('ready');
    now = 1000;
    redis.emit('error', connectError('ECONNRESET'));
    redis.emit('close');
    now = 1001;
    expect(withCause(refused)).toBeInstanceOf(DependencyError);
    redis.emit('error', connectError('ECONNREFUSED'));
    expect(withCause(refused)).toBe(refused);
    // a close of a connection that was never ready (an attempt) starts no grace
    redis.emit('close');
    expect(withCause(refused)).toBe(refused);
  });
});
