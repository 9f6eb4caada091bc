/**
 * etcd access for integration tests: plain `etcdctl` against the local stack's etcd, as an
 * operator would do it, with the prefix of CONTRACT.md §4.
 */
import { createEtcdClient } from '../../src/config/etcd-client.js';
import { etcdClientUrl } from '../../stack/etcd.js';
import { etcdctlSync, getArgs, printedValue, putArgs } from '../../stack/etcdctl.js';
import { topology } from '../../stack/topology.js';

export const ETCD_ENDPOINT = etcdClientUrl;
export const PREFIX = topology.etcd.prefix;

export function etcdPut(key: string, value: string): void {
  etcdctlSync(putArgs(`${PREFIX}${key}`, value));
}

export function etcdGet(key: string): string | undefined {
  return etcdGetKey(`${PREFIX}${key}`);
}

/** a key outside the prefix, such as a move's record or lock beside it */
export function etcdGetKey(fullKey: string): string | undefined {
  return printedValue(etcdctlSync(getArgs(fullKey)));
}

/** a key outside the prefix, such as a move's record */
export function etcdPutKey(fullKey: string, value: string): void {
  etcdctlSync(putArgs(fullKey, value));
}

export function etcdDel(key: string): void {
  etcdDelKey(`${PREFIX}${key}`);
}

/** one key outside the prefix (never a range) */
export function etcdDelKey(fullKey: string): void {
  etcdctlSync(['del', fullKey]);
}

/** Set a key for the duration of a test; returns a function that restores the previous value. */
export function etcdOverride(key: string, value: string): () => void {
  const before = etcdGet(key);
  etcdPut(key, value);
  return () => (before === undefined ? etcdDel(key) : etcdPut(key, before));
}

/**
 * A connected etcd client, for a put that must land within a few milliseconds of a moment the
 * test has just seen (etcdctl's process start alone can take hundreds of ms on a busy box). It
 * connects before it returns, so the put itself is one round trip. Close it when done.
 */
export async function etcdQuickPutter(): Promise<{
  put(key: string, value: string): Promise<void>;
  close(): void;
}> {
  const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
  await client.get(`${PREFIX}cache/enabled`).string();
  return {
    put: async (key, value) => {
      await client.put(`${PREFIX}${key}`).value(value);
    },
    close: () => client.close(),
  };
}

/**
 * A shard deleted in etcd while a tenant is on it, after a failover moved its master from :3998 to
 * :3997 (no server listens on either: only the config is looked at). The instances keep it as it
 * was right before the delete, master :3997. Answers the tenant's key, for the caller to delete.
 */
export function deleteShardUnderTenant(shard: string, tenant: string): string {
  const at = (port: number) =>
    JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [], database: 'shardgate' });
  etcdPut(`shards/${shard}`, at(3998));
  etcdPut(`tenants/${tenant}`, JSON.stringify({ shard, status: 'active' }));
  etcdPut(`shards/${shard}`, at(3997));
  etcdDel(`shards/${shard}`);
  return `tenants/${tenant}`;
}
