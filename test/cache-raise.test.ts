/**
 * Version raises as Redis merges them (the Lua of src/cache/redis.ts, run by the stack's real
 * Redis) give the same text as the memory store's rule (src/cache/position-merge.ts), MySQL GTID
 * sets included: a raise that arrives after a newer one never lowers a version. An absent version
 * key reads as none; a fill gives it a fresh mark, which a raise replaces.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { mergePositions } from '../src/cache/position-merge.js';
import { RedisCacheStore } from '../src/cache/redis.js';
import { topology } from '../stack/topology.js';
import { waitFor } from './helpers/wait-for.js';

const store = new RedisCacheStore({ url: `redis://${topology.host}:${topology.redis.port}` });
const admin = new Redis(topology.redis.port, topology.host);
afterAll(() => {
  admin.disconnect();
  return store.close();
});
const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '0fd4b3b6-0000-11e1-9e33-c80aa9429562';

const cases: [flavour: 'mariadb' | 'mysql', first: string, second: string][] = [
  ['mariadb', '0-1-10,1-2-3', '0-1-9,2-3-1'],
  ['mysql', `${A}:1-11`, `${A}:1-10`],
  ['mysql', `${A}:1-5:9`, `${A}:6-7,${B}:1-3`],
  ['mysql', `${A.toUpperCase()}:1-2`, `${A}:3,${A}:tag_x:1-4`],
  ['mysql', `${A}:1-2`, `${A}:1-1234567890123456`],
  ['mysql', 'not a set', `${A}:1-2`],
];

describe('version raises in Redis', () => {
  it.each(cases)('%s: %s then %s merge as the memory store merges them', async (flavour, first, second) => {
    await waitFor(() => store.get('sg:probe').then(() => true), { timeoutMs: 5000, what: 'redis' });
    const key = `sg:{t-raise-${randomBytes(3).toString('hex')}}:shard-1:v:book:1`;
    await store.raisePositions([key], flavour, first, 60);
    await store.raisePositions([key], flavour, second, 60);
    expect(await store.get(key)).toBe(mergePositions(flavour, first, second));
    await store.del([key]);
  });

  it('MySQL: the later, lower raise keeps the higher set', async () => {
    const key = `sg:{t-raise-${randomBytes(3).toString('hex')}}:shard-1:v:book:1`;
    await store.raisePositions([key], 'mysql', `${A}:1-11`, 60);
    await store.raisePositions([key], 'mysql', `${A}:1-10`, 60);
    expect(await store.get(key)).toBe(`${A}:1-11`);
    await store.del([key]);
  });

  it.each([
    'mariadb',
    'mysql',
  ] as const)('%s: an absent version key reads as none; a fill makes a fresh mark, renews it, stores nothing once the key changed; a raise replaces the mark', async (flavour) => {
    await waitFor(() => store.get('sg:probe').then(() => true), { timeoutMs: 5000, what: 'redis' });
    const key = `sg:{t-raise-${randomBytes(3).toString('hex')}}:shard-1:v:book:1`;
    const prefix = `${key.replace(':v:', ':e:')}:`;
    const fill = (version: string, value: string) => ({
      versionKey: key,
      version,
      prefix,
      suffix: '',
      value,
      ttlSeconds: 60,
      markTtlSeconds: 120,
    });
    try {
      // what a fill of an earlier build left under "no version": never read
      await store.set(prefix, 'old', 60);
      expect(await store.getVersioned(key, prefix, '')).toEqual({ version: '', value: undefined });
      expect(await admin.exists(key)).toBe(0); // a read writes nothing
      // the fill of that read: a mark, the entry under it
      expect(await store.fillVersioned(fill('', 'first'))).toBe(true);
      const first = await store.getVersioned(key, prefix, '');
      expect(first.version).toMatch(/^~\d+\.\d{6}$/);
      expect(first.value).toBe('first');
      expect(await admin.ttl(key)).toBeGreaterThan(110);
      // a second fill of an absent key that raced with the first stores nothing
      expect(await store.fillVersioned(fill('', 'late'))).toBe(false);
      // a refill under the mark gives the mark its TTL again
      await admin.expire(key, 5);
      expect(await store.fillVersioned(fill(first.version, 'refill'))).toBe(true);
      expect(await admin.ttl(key)).toBeGreaterThan(110);
      // deleted (by hand, by eviction): read as none, the entry under the mark out of reach
      await store.del([key]);
      expect(await store.getVersioned(key, prefix, '')).toEqual({ version: '', value: undefined });
      expect(await store.fillVersioned(fill('', 'second'))).toBe(true);
      const second = await store.getVersioned(key, prefix, '');
      expect(second.value).toBe('second');
      expect(Number(second.version.slice(1))).toBeGreaterThan(Number(first.version.slice(1)));
      // a raise replaces the mark; a fill for the mark read before it stores nothing
      const position = flavour === 'mariadb' ? '0-11-5' : `${A}:1-5`;
      await store.raisePositions([key], flavour, position, 60);
      expect(await store.get(key)).toBe(position);
      expect(await store.fillVersioned(fill(second.version, 'stale'))).toBe(false);
      expect(await store.get(`${prefix}${second.version}`)).toBe('second');
    } finally {
      const keys = await admin.keys(`${prefix}*`);
      await admin.del(key, ...keys);
    }
  });
});
