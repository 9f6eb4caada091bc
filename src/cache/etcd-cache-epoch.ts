/**
 * The cache epoch's etcd adapter: a move of `<prefix>runtime/cache_epoch`, or of a tenant's
 * `<prefix>runtime/tenant_cache_epoch/<id>` (schema.ts), which every instance's config watch picks up. Rejects when etcd does not take it within the client's call
 * deadline (etcd-client.ts).
 *
 * A move is a read, then a put guarded by the key's mod revision read (a compare-and-swap), of
 * the larger of the value asked for and the value read plus one. A put that found the key moved
 * since its read writes nothing and resolves: the other move, written after this one began,
 * retires every entry filled before it too (the contract of CacheEpochRetirer.retire, in
 * cache-epoch.ts). So no move ever sets the epoch back: before, a plain put delayed in flight, or
 * repeated by the client's retry after a timeout, could land after another instance's newer
 * epoch and bring back the entries that one had retired (served to readers without a token).
 */
import type { Etcd3 } from 'etcd3';
import { CACHE_EPOCH_KEY } from '../config/schema.js';
import type { EpochWrite } from './cache-epoch.js';

/** `key`: the epoch's key under the prefix, the global one unless named */
export function etcdEpochWrite(client: Etcd3, prefix: string, epochKey = CACHE_EPOCH_KEY): EpochWrite {
  const key = `${prefix}${epochKey}`;
  return async (value) => {
    const kv = (await client.get(key).exec()).kvs[0];
    const current = kv ? Number(kv.value.toString('utf8')) : Number.NaN;
    const next =
      Number.isSafeInteger(current) && current >= value && current < Number.MAX_SAFE_INTEGER
        ? current + 1
        : value;
    const guard = kv ? client.if(key, 'Mod', '==', kv.mod_revision) : client.if(key, 'Create', '==', 0);
    await guard.then(client.put(key).value(String(next))).commit();
  };
}
