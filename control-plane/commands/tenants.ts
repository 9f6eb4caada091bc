/**
 * `tenants create <id> [--shard S] [--status] [--name]`, `tenants list`, `tenants show <id>`.
 * Without --shard, the `placement` policy picks the shard: `least-tenants` = the shard of the
 * policy's list holding the fewest tenants (first in list order on a tie).
 */
import { ID_PATTERN, TENANT_STATUSES, type TenantEntry } from '../../src/config/schema.js';
import { loadState, type PrefixRead, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { writeKeys } from '../write-keys.js';

function state(read: PrefixRead) {
  return loadState(read).snapshot;
}

export function pickShard(read: PrefixRead): string {
  const snap = state(read);
  const candidates = snap.placement?.shards ?? [...snap.shards.keys()].sort();
  if (candidates.length === 0)
    throw new UserError('no shard to place the tenant on: add one with `shards add` or pass --shard');
  const counts = new Map(candidates.map((s) => [s, 0]));
  for (const t of snap.tenants.values())
    if (counts.has(t.shard)) counts.set(t.shard, counts.get(t.shard)! + 1);
  return candidates.reduce((best, s) => (counts.get(s)! < counts.get(best)! ? s : best), candidates[0]!);
}

export async function createTenant(
  ctx: CtlContext,
  id: string,
  opts: { shard?: string; status?: string; name?: string },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid tenant id "${id}": must match ${ID_PATTERN.source}`);
  if (opts.status && !(TENANT_STATUSES as readonly string[]).includes(opts.status)) {
    throw new UserError(`invalid --status "${opts.status}": one of ${TENANT_STATUSES.join(', ')}`);
  }
  await writeKeys(ctx, (read) => {
    const existing = read.entries.get(`tenants/${id}`);
    if (existing) throw new UserError(`tenant ${id} already exists: ${existing}`);
    const shard = opts.shard ?? pickShard(read);
    const entry: TenantEntry = { shard, status: (opts.status as TenantEntry['status']) ?? 'active' };
    if (opts.name) entry.name = opts.name;
    return new Map([[`tenants/${id}`, JSON.stringify(entry)]]);
  });
}

export async function setTenantStatus(ctx: CtlContext, id: string, status: string): Promise<void> {
  if (!(TENANT_STATUSES as readonly string[]).includes(status)) {
    throw new UserError(`invalid status "${status}": one of ${TENANT_STATUSES.join(', ')}`);
  }
  await writeKeys(ctx, (read) => {
    const raw = read.entries.get(`tenants/${id}`);
    if (!raw) throw new UserError(`unknown tenant ${id}`);
    return new Map([[`tenants/${id}`, JSON.stringify({ ...JSON.parse(raw), status })]]);
  });
}

export async function listTenants(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const snap = state(await readPrefix(ctx));
  const rows = [...snap.tenants].sort(([a], [b]) => a.localeCompare(b)).map(([id, t]) => ({ id, ...t }));
  if (opts.json) return ctx.out(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return ctx.out('no tenants');
  for (const r of rows)
    ctx.out(`${r.id.padEnd(24)} ${r.shard.padEnd(12)} ${r.status}${r.name ? `  ${r.name}` : ''}`);
}

export async function showTenant(ctx: CtlContext, id: string, opts: { json?: boolean }): Promise<void> {
  const snap = state(await readPrefix(ctx));
  const t = snap.tenants.get(id);
  if (!t) throw new UserError(`unknown tenant ${id}`);
  const shard = snap.shards.get(t.shard);
  const view = { id, ...t, shardConfig: shard };
  if (opts.json) return ctx.out(JSON.stringify(view, null, 2));
  ctx.out(
    `tenant ${id}\n  shard:  ${t.shard}\n  status: ${t.status}${t.name ? `\n  name:   ${t.name}` : ''}`,
  );
  if (shard) ctx.out(`  master: ${shard.master.host}:${shard.master.port}`);
}
