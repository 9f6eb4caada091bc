/**
 * The etcd watch a starting instance reads a gone shard's puts with (src/config/history-restore.ts
 * `etcdPutsReader`), against the stack's etcd: it finds the puts of a key after a revision, and
 * from a revision etcd compacted away it fails within its deadline. Before, etcd cancelled such a
 * watch and its cancel was awaited for good: every instance start, and `status`, hung once the
 * history of a tenant on a deleted shard was compacted (a review).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { etcdPutsReader } from '../src/config/history-restore.js';
import { etcdctlSync } from '../stack/etcdctl.js';
import { ETCD_ENDPOINT, etcdDel, PREFIX } from './helpers/etcd.js';
import { uniqueTenantId } from './helpers/tenants.js';

const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
const key = `shards/${uniqueTenantId('hwatch')}`;

afterAll(() => {
  etcdDel(key);
  client.close();
});

describe('the watch of a gone shard’s puts', () => {
  it('finds the puts after a revision, a delete between them', async () => {
    const start = Number((await client.get(`${PREFIX}${key}`).exec()).header.revision);
    const first = Number((await client.put(`${PREFIX}${key}`).value('a').exec()).header.revision);
    await client.delete().key(`${PREFIX}${key}`).exec();
    const second = Number((await client.put(`${PREFIX}${key}`).value('b').exec()).header.revision);
    const read = etcdPutsReader(client, PREFIX, 300);
    expect(await read(key, start)).toEqual([first, second]);
    expect(await read(key, first)).toEqual([second]);
  });

  it('fails within its deadline from a compacted revision, where it hung', async () => {
    // revision 1 is compacted by then (compacting at 2 takes away nothing any test reads)
    try {
      etcdctlSync(['compact', '2']);
    } catch {
      // compacted past 2 already
    }
    const began = Date.now();
    await expect(etcdPutsReader(client, PREFIX, 300, 3000)(key, 0)).rejects.toThrow();
    expect(Date.now() - began).toBeLessThan(5000);
  });
});
