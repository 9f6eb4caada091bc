/**
 * A shard whose `passwordEnv` names a variable the process lacks. The instances' config store
 * (EtcdConfigStore, judging by process.env unless told otherwise) rejects it, naming the variable,
 * and keeps the last good value, as docs/configuration.md says ("a password variable it lacks");
 * before, it took the shard and the connection fell back to SHARDGATE_DB_PASSWORD. (shardgate-ctl
 * does not judge this: control-plane/validate-changes.ts says why.)
 *
 * Under a prefix of its own (`/ct-pwenv-<hex>/`, outside /shardgate/); each key made is removed
 * with a single-key delete at the end.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { silentLogger } from '../src/observability/logger.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const prefix = `/ct-pwenv-${randomBytes(3).toString('hex')}/`;
const MISSING = 'SHARDGATE_DB_PASSWORD_CT_NOPE';
const PRESENT = 'SHARDGATE_DB_PASSWORD_CT_SET';
const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
const made = new Set<string>();
const stores: EtcdConfigStore[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  for (const key of made) await client.delete().key(key);
  client.close();
  delete process.env[PRESENT];
});
async function put(key: string, value: string): Promise<void> {
  made.add(`${prefix}${key}`);
  await client.put(`${prefix}${key}`).value(value);
}
const shard = (passwordEnv: string, port = 3326) =>
  JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [], database: 'shardgate', passwordEnv });

describe('a shard naming a password variable the process lacks', () => {
  it("is rejected by the instances' config store with a reason naming it; the last good value stays", async () => {
    expect(process.env[MISSING]).toBeUndefined();
    process.env[PRESENT] = 'pw';
    await put('shards/ct-s1', shard(PRESENT));
    await put('shards/ct-s2', shard(MISSING));
    const store = new EtcdConfigStore({ client, prefix, logger: silentLogger });
    stores.push(store);
    await store.start();
    expect(store.status().rejected).toContainEqual({
      key: 'shards/ct-s2',
      reason: `passwordEnv ${MISSING} is not set in this process's environment`,
    });
    expect(store.current().shards.has('ct-s2')).toBe(false);
    // a typo over a good value, live: rejected, the good value kept
    await put('shards/ct-s1', shard(MISSING, 3316));
    await waitFor(
      () =>
        store
          .status()
          .rejected.some(
            (r) =>
              r.key === 'shards/ct-s1' &&
              r.reason ===
                `passwordEnv ${MISSING} is not set in this process's environment; keeping last good value`,
          ),
      { timeoutMs: 5000, what: 'shards/ct-s1 rejected' },
    );
    expect(store.current().shards.get('ct-s1')?.passwordEnv).toBe(PRESENT);
    expect(store.current().shards.get('ct-s1')?.master.port).toBe(3326);
  });
});
