/**
 * Issue "data path", Done-when 1: tenants on both shards; a member registered in each through
 * HAProxy lands on its shard's master, appears on that shard's replica, and on no other shard.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { DB_NODES, node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shards = topology.shards.map((s) => s.id);
const tenants = shards.map((shard) => ({ shard, id: uniqueTenantId(`dp-${shard}`) }));

beforeAll(async () => {
  for (const t of tenants) await createTenant(t.id, t.shard);
});
afterAll(() => {
  for (const t of tenants) removeTenant(t.id);
});

async function memberRows(port: number, tenantId: string, email: string) {
  return rootQuery<{ id: string; role: string }>(
    port,
    'SELECT id, role FROM members WHERE tenant_id = ? AND email = ?',
    [tenantId, email],
  );
}

describe('tenant-sharded data path', () => {
  it.each(tenants)('a member of $id lands on $shard only (master, then its replica)', async ({
    id,
    shard,
  }) => {
    const email = `reader-${id}@example.com`;
    const { member, registered } = await registerAndLogin(id, email);
    expect(registered.headers.get('X-Shard')).toBe(shard);
    expect(registered.headers.get('X-Consistency-Token')).toMatch(/^v2\./);
    expect(member.role).toBe('librarian');

    for (const n of DB_NODES) {
      if (n.shard === shard && n.role === 'master') {
        expect(await memberRows(n.port, id, email)).toEqual([{ id: member.id, role: 'librarian' }]);
        const outbox = await rootQuery<{ kind: string; recipient: string }>(
          n.port,
          'SELECT kind, recipient FROM outbox WHERE tenant_id = ?',
          [id],
        );
        expect(outbox).toEqual([{ kind: 'welcome', recipient: email }]);
      } else if (n.shard === shard) {
        await waitFor(async () => (await memberRows(n.port, id, email)).length === 1, {
          timeoutMs: 5000,
          what: `member on ${n.shard} ${n.role}`,
        });
      } else {
        expect(await memberRows(n.port, id, email), `${n.shard} ${n.role} must not hold it`).toEqual([]);
      }
    }
  });

  it("makes exactly one librarian when a tenant's first members register at the same time", async () => {
    const id = uniqueTenantId('dp-race');
    await createTenant(id, shards[0]!);
    try {
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          api('POST', '/v1/members', {
            tenant: id,
            body: { email: `racer-${i}@example.com`, name: `Racer ${i}`, password: 'password-123' },
          }),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(12).fill(201));
      expect(answers.filter((a) => a.json.role === 'librarian')).toHaveLength(1);
    } finally {
      removeTenant(id);
    }
  });

  it("registers a tenant's later members while another transaction holds its counter row", async () => {
    // the first registration's row lock is only taken until one has committed: later ones read
    // the row without it, so they do not queue on each other (nor here on a root transaction)
    const id = uniqueTenantId('dp-ctr');
    await createTenant(id, shards[0]!);
    const holder = await rootConnection(node(shards[0]!, 'master').port);
    try {
      const first = await api('POST', '/v1/members', {
        tenant: id,
        body: { email: 'first@example.com', name: 'First', password: 'password-123' },
      });
      expect(first.status).toBe(201);
      expect(first.json.role).toBe('librarian');
      await holder.query('START TRANSACTION');
      await holder.query('SELECT members_registered FROM tenant_state WHERE tenant_id = ? FOR UPDATE', [id]);
      const later = await Promise.all(
        Array.from({ length: 3 }, (_, i) =>
          api('POST', '/v1/members', {
            tenant: id,
            body: { email: `later-${i}@example.com`, name: `Later ${i}`, password: 'password-123' },
          }),
        ),
      );
      expect(later.map((a) => [a.status, a.json.role ?? a.json.code])).toEqual(
        Array(3).fill([201, 'member']),
      );
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      holder.destroy();
      removeTenant(id);
    }
  });
});
