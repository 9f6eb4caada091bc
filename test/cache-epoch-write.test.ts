/**
 * The cache epoch's etcd write (cache/etcd-cache-epoch.ts) against the real etcd, under a prefix
 * of its own: a move never sets the epoch back. Before, a plain put that landed after another
 * instance's newer epoch (delayed in flight, or repeated by the client's retry) set it back, and
 * the entries that epoch had retired were served again.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { etcdEpochWrite } from '../src/cache/etcd-cache-epoch.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { CACHE_EPOCH_KEY } from '../src/config/schema.js';
import { ETCD_ENDPOINT, etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';

const PREFIX = `/ce-${randomBytes(4).toString('hex')}/`;
const KEY = `${PREFIX}${CACHE_EPOCH_KEY}`;
const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });

afterAll(() => {
  etcdDelKey(KEY);
  client.close();
});

/** `real`, but another writer puts `value` right after each read of the key (a move racing ours) */
function racedBy(real: Etcd3, value: string): Etcd3 {
  return new Proxy(real, {
    get(target, property, receiver) {
      if (property !== 'get') return Reflect.get(target, property, receiver);
      return (key: string) => {
        const builder = target.get(key);
        const exec = builder.exec.bind(builder);
        builder.exec = async () => {
          const read = await exec();
          await target.put(key).value(value).exec();
          return read;
        };
        return builder;
      };
    },
  });
}

describe('the cache epoch write', () => {
  it('writes the value asked for, or one above a larger epoch; never a smaller one', async () => {
    const write = etcdEpochWrite(client, PREFIX);
    await write(1_000);
    expect(etcdGetKey(KEY)).toBe('1000');
    await write(2_000);
    expect(etcdGetKey(KEY)).toBe('2000');
    // an instance whose clock is behind, or a late move: above what is there, not below it
    etcdPutKey(KEY, '9000');
    await write(3_000);
    expect(etcdGetKey(KEY)).toBe('9001');
  });

  it('writes nothing when another move landed after its read: that one retires the same entries', async () => {
    etcdPutKey(KEY, '5000');
    await etcdEpochWrite(racedBy(client, '7000'), PREFIX)(6_000);
    expect(etcdGetKey(KEY)).toBe('7000');
    etcdDelKey(KEY);
    await etcdEpochWrite(racedBy(client, '8000'), PREFIX)(6_000);
    expect(etcdGetKey(KEY)).toBe('8000');
  });
});
