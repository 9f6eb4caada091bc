/**
 * The read cache's keys of one tenant on one shard all start with `sg:{<tenant>}:<shard>:` (the
 * hash tag keeps a tenant in one Redis Cluster slot). `shardgate-ctl tenants move` deletes this
 * namespace on the shard a tenant moves to, so entries of an earlier stay there are never read,
 * and on the shard it leaves, with its rows.
 */
export const cacheNamespace = (tenantId: string, shardId: string) => `sg:{${tenantId}}:${shardId}`;

/**
 * What every Redis key of a tenant id starts with, on any shard (its login-throttle counters
 * too): `tenants create` and `tenants remove` delete them, so a tenant created later with the id
 * is never served what an earlier one left cached.
 */
export const tenantKeyPrefix = (tenantId: string) => `sg:{${tenantId}}:`;
