/**
 * What a config store tells its listeners when it starts while a key is invalid, against the real
 * etcd (its own prefix). The first publish must name every key relative to the empty state before
 * the start, whatever the restore of the invalid key's last good value (history-restore.ts) did:
 * a listener that acts only on the keys it follows (the shard router on `shards/`) must see them.
 *
 * Before: the restore replaced the changes of the load with its own, relative to the loaded state,
 * so they named only the restored key. An instance started while `cache/near_max_entries` was
 * invalid then routed no shard at all (503 "shard is not configured" for every tenant) until a
 * `shards/` key changed, while reporting ready — whenever its router subscribed before the load.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { ConfigChange } from '../src/config/config-state.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { type Logger, silentLogger } from '../src/observability/logger.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';

// random too: an interrupted run may have left keys under an earlier prefix of the same pid
const PREFIX = `/shardgate-start-changes-test-${process.pid}-${randomBytes(4).toString('hex')}/`;
const SHARD = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}';

const direct = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
const stores: EtcdConfigStore[] = [];

afterAll(async () => {
  for (const s of stores) await s.close();
  await direct.delete().prefix(PREFIX).exec();
  direct.close();
});

/** a store subscribed before its start, as the API's router is; the first publish it sees */
async function firstPublish(): Promise<{ store: EtcdConfigStore; changes: ConfigChange[] }> {
  const store = new EtcdConfigStore({ client: direct, prefix: PREFIX, logger: silentLogger });
  stores.push(store);
  const published: ConfigChange[][] = [];
  store.onChange((_snapshot, changes) => published.push([...changes]));
  await store.start();
  return { store, changes: published[0] ?? [] };
}

describe('config store start', () => {
  it('publishes every key when a key unrelated to shards is invalid and its last good value is restored', async () => {
    await direct.put(`${PREFIX}shards/s1`).value(SHARD).exec();
    await direct.put(`${PREFIX}tenants/t1`).value('{"shard":"s1","status":"active"}').exec();
    await direct.put(`${PREFIX}cache/near_max_entries`).value('5').exec();
    await direct.put(`${PREFIX}cache/near_max_entries`).value('abc').exec();

    const { store, changes } = await firstPublish();
    expect(store.status().rejected.map((r) => r.key)).toEqual(['cache/near_max_entries']);
    expect(store.current().cache.nearMaxEntries).toBe(5);
    expect(changes.map((c) => c.key).sort()).toEqual(['cache/near_max_entries', 'shards/s1', 'tenants/t1']);
    expect(changes.find((c) => c.key === 'shards/s1')).toEqual({
      key: 'shards/s1',
      old: undefined,
      new: SHARD,
    });
    expect(changes.find((c) => c.key === 'cache/near_max_entries')).toEqual({
      key: 'cache/near_max_entries',
      old: undefined,
      new: '5',
    });
  });

  it('logs each setting it loads at info, the tenant directory as one count (its entries at debug), later changes each', async () => {
    const prefix = `${PREFIX}log/`;
    await direct.put(`${prefix}shards/s1`).value(SHARD).exec();
    for (const t of ['t1', 't2', 't3'])
      await direct.put(`${prefix}tenants/${t}`).value('{"shard":"s1","status":"active"}').exec();
    const lines: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];
    const capture = (level: string) => (obj: object, msg?: string) =>
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    const logger: Logger = {
      debug: capture('debug'),
      info: capture('info'),
      warn: capture('warn'),
      error: capture('error'),
      child: () => logger,
    };
    const store = new EtcdConfigStore({ client: direct, prefix, logger });
    stores.push(store);
    await store.start();
    const info = lines.filter((l) => l.level === 'info');
    expect(info.some((l) => l.obj.key === 'shards/s1' && l.msg === 'config loaded')).toBe(true);
    expect(info.filter((l) => String(l.obj.key).startsWith('tenants/'))).toEqual([]);
    expect(info.filter((l) => l.obj.entries !== undefined).map((l) => l.obj.entries)).toEqual([3]);
    expect(lines.filter((l) => l.level === 'debug' && String(l.obj.key).startsWith('tenants/'))).toHaveLength(
      3,
    );
    // a tenant added later is an operator's change: its own info line
    await direct.put(`${prefix}tenants/t4`).value('{"shard":"s1","status":"active"}').exec();
    await vi.waitFor(
      () => expect(lines.some((l) => l.level === 'info' && l.obj.key === 'tenants/t4')).toBe(true),
      { timeout: 2000 },
    );
  });
});
