import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ownResourceShortage } from '../resilience/own-resources.js';
import { connectShortage } from './connect-shortage.js';
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

describe('connectShortage', () => {
  it('a command refused while not connected, after a connect failed for want of a descriptor, tells the shortage', async () => {
    const redis = client();
    const withShortage = connectShortage(redis);
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
    const withShortage = connectShortage(redis);
    const refused = await redis.get('k').catch((e: unknown) => e);
    expect(withShortage(refused)).toBe(refused);
    redis.emit('error', connectError('EMFILE'));
    redis.emit('error', connectError('ECONNREFUSED'));
    expect(withShortage(refused)).toBe(refused);
    redis.emit('error', connectError('EMFILE'));
    redis.emit('ready');
    expect(withShortage(refused)).toBe(refused);
  });
});
