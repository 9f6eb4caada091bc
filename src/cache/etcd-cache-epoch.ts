/**
 * The cache epoch's etcd adapter: one put of `<prefix>runtime/cache_epoch` (schema.ts), which every
 * instance's config watch picks up. Rejects when etcd does not take it within the client's call
 * deadline (etcd-client.ts).
 */
import type { Etcd3 } from 'etcd3';
import { CACHE_EPOCH_KEY } from '../config/schema.js';
import type { EpochWrite } from './cache-epoch.js';

export function etcdEpochWrite(client: Etcd3, prefix: string): EpochWrite {
  const key = `${prefix}${CACHE_EPOCH_KEY}`;
  return async (value) => {
    await client.put(key).value(String(value)).exec();
  };
}
