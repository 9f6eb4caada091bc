/**
 * The read cache's keys of one tenant on one shard all start with `sg:{<tenant>}:<shard>:` (the
 * hash tag keeps a tenant in one Redis Cluster slot). `shardgate-ctl tenants move` deletes this
 * namespace on the shard a tenant moves to, so entries of an earlier stay there are never read.
 */
export const cacheNamespace = (tenantId: string, shardId: string) => `sg:{${tenantId}}:${shardId}`;
