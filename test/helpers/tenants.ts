/**
 * Tenants for integration tests: unique ids per test file, created with `shardgate-ctl` as an
 * operator would, removed from the directory afterwards (their rows stay, under ids never reused).
 */
import { randomBytes } from 'node:crypto';
import { moveRecordKey } from '../../control-plane/move-record.js';
import { tenantCacheEpochKey } from '../../src/config/schema.js';
import { api, INSTANCES } from './api.js';
import { ctl } from './ctl.js';
import { etcdDel, etcdDelKey, etcdGet, etcdGetKey, PREFIX } from './etcd.js';
import { waitFor } from './wait-for.js';

export function uniqueTenantId(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`;
}

export type TenantStatus = 'active' | 'readonly' | 'suspended';

/** Create the tenant and wait until every API instance knows it (at most 2 s by contract). */
export async function createTenant(
  id: string,
  shard: string,
  status: TenantStatus = 'active',
): Promise<void> {
  const r = ctl(['tenants', 'create', id, '--shard', shard, '--status', status]);
  if (r.code !== 0) throw new Error(`shardgate-ctl tenants create ${id}: ${r.stderr || r.stdout}`);
  await waitForTenant(id, (s) => s !== 404);
}

export async function setTenantStatus(id: string, status: TenantStatus): Promise<void> {
  const r = ctl(['tenants', 'set-status', id, status]);
  if (r.code !== 0) throw new Error(`shardgate-ctl tenants set-status ${id}: ${r.stderr || r.stdout}`);
  const expected = status === 'suspended' ? 403 : 200;
  await waitForTenant(id, (s) => s === expected);
}

/** The tenant's entry, and the record of a move of it that a test left interrupted (if any). */
export function removeTenant(id: string): void {
  etcdDel(`tenants/${id}`);
  // the mark of a move a test stopped (or pointed elsewhere by hand), as `tenants remove` does
  if (etcdGet(`moving/${id}`) !== undefined) etcdDel(`moving/${id}`);
  const record = moveRecordKey(PREFIX, id);
  if (etcdGetKey(record) !== undefined) etcdDelKey(record);
  // its own cache epoch, moved by a write of unknown outcome, as `tenants remove` does
  if (etcdGet(tenantCacheEpochKey(id)) !== undefined) etcdDel(tenantCacheEpochKey(id));
}

async function waitForTenant(id: string, ok: (status: number) => boolean): Promise<void> {
  await waitFor(
    async () => {
      const answers = await Promise.all(
        INSTANCES.map((base) => api('GET', '/v1/books?limit=1', { tenant: id, base })),
      );
      return answers.every((a) => ok(a.status));
    },
    { timeoutMs: 5000, what: `tenant ${id} on every instance` },
  );
}
