/**
 * A unit test's etcd: shard-1 (master :3316, one replica :3317) and the active tenant `acme` on
 * it, plus the test's own keys (which may replace those two), in a MemoryConfigStore — loaded
 * unless `loaded: false`.
 */
import { MemoryConfigStore } from '../config/memory-config-store.js';

export const ONE_SHARD = JSON.stringify({
  master: { host: '127.0.0.1', port: 3316 },
  replicas: [{ host: '127.0.0.1', port: 3317, weight: 1 }],
});

export function oneShardConfig(keys: Record<string, string> = {}, { loaded = true } = {}) {
  return new MemoryConfigStore({
    loaded,
    initial: {
      'shards/shard-1': ONE_SHARD,
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
      ...keys,
    },
  });
}
