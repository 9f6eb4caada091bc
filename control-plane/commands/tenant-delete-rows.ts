/**
 * `tenants delete-rows <id> --shard <s> --yes`: delete every row a tenant id holds on one shard's
 * master (members, books, loans, idempotency keys, its tenant_state, and its delivered mails), so
 * the id is free there. `tenants remove` deletes the directory entry only; this is the second step
 * of taking a tenant off for good, and the way to clear rows a `tenants move --keep-source` or an
 * interrupted move left behind.
 *
 * Refused (exit 1, nothing deleted) while the tenant's entry places it on that shard or is one
 * the instances reject (they may serve its last good value, there), while a record of a move of
 * it exists, without --yes, for an unknown shard, and without a database password. It holds the
 * tenant's move lock throughout (move-lock.ts), so no `tenants move` or `tenants create` of the
 * id runs meanwhile, and reads the directory again after deleting: an entry placed there
 * meanwhile all the same (written by hand or by `config apply`) is an exit 1 whose line says
 * what was deleted, since its first rows may be gone. Before it deletes, every registered API
 * instance must have applied the removal (waitUntilEveryInstanceApplied; up to 10 s).
 *
 * Mails: a delivered one is deleted only once the worker's own purge would (delivered, and
 * created, more than `mail/outbox_retention_hours` ago): younger ones keep a redelivered copy from
 * being sent twice (outbox-store.ts), and stay until that purge; none when the setting is 0 (the
 * worker keeps every mail) or rejected (the worker runs a value this command cannot know). Mails
 * not delivered (due, retrying, or dead-lettered) stay too; the line counts both.
 *
 * Failure modes: the master unreachable, or not answering a statement within 30 s, is exit 2
 * (shard-server.ts); an SQL error is exit 1 naming it. Each batch commits on its own and
 * deletes children before parents (tenant-rows.ts deleteTenantRows), so running the command
 * again deletes the rest. The removal record of the id on that shard is deleted once the rows
 * are; Redis entries of the id are cleared as `tenants create` clears them.
 */
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { configValueText } from '../../src/config/config-value-text.js';
import {
  BARRIER_KEY,
  ID_PATTERN,
  type InstanceInfo,
  parseConfigKey,
  type ShardConfig,
} from '../../src/config/schema.js';
import { shardPassword } from '../../src/db/shard-password.js';
import { idFloor } from '../../src/domain/ids.js';
import type { CtlContext } from '../ctl-context.js';
import { ConcurrentChangeError, UnreachableError, UserError } from '../ctl-errors.js';
import { acquireMoveLock } from '../move-lock.js';
import { readMoveRecord } from '../move-record.js';
import { loadState, type PrefixRead, readPrefix } from '../prefix-read.js';
import { updateRemovalRecord } from '../removal-record.js';
import { forgetTenantKeys } from '../tenant-cache.js';
import { connectShardServer, deleteTenantRows, TENANT_TABLES } from '../tenant-rows.js';

const DELIVERED_PAGE_ROWS = 1000;

/**
 * Why the rows of `id` on `shardId` may be in use, and what to do first; undefined when they are
 * not: its directory entry places it there, or is one the instances reject (they may keep serving
 * its last good value, which the CLI cannot always read back: history compacted), or a move of it
 * is recorded. `read`: the config read already made, else a fresh one.
 */
async function inUse(
  ctx: CtlContext,
  id: string,
  shardId: string,
  read?: PrefixRead,
): Promise<{ why: string; first: string } | undefined> {
  const current = read ?? (await readPrefix(ctx));
  const remove = `remove it first (tenants remove ${id} --yes)`;
  if (current.entries.has(`tenants/${id}`)) {
    const state = loadState(current);
    const rejected = state.rejected.find((r) => r.key === `tenants/${id}`);
    if (rejected)
      return {
        why: `tenant ${id}'s entry is one the instances reject (${rejected.reason}): they may still serve it by its last good value`,
        first: `fix it or ${remove}`,
      };
    if (state.snapshot.tenants.get(id)?.shard === shardId)
      return {
        why: `tenant ${id} is in the directory on shard ${shardId}: its rows are in use`,
        first: remove,
      };
  }
  if (await readMoveRecord(ctx, id).catch(() => 'unreadable'))
    return {
      why: `tenant ${id} has the record of a move (tenants show ${id})`,
      first: 'finish it or take it back with tenants move first',
    };
  return undefined;
}

const refused = (use: { why: string; first: string }) =>
  new UserError(`${use.why}; ${use.first}; nothing deleted`);

/** how long the instances get to apply the tenant's removal before the command gives up */
const REMOVAL_APPLIED_WAIT_MS = 10_000;
/** tries of the barrier's guarded put while the tenant's keys keep changing */
const BARRIER_ATTEMPTS = 5;

/**
 * With the tenant out of the directory, every registered instance must have applied that: one
 * that still serves it could write its rows after they are deleted. Puts the barrier
 * (`runtime/barrier`, schema.ts), guarded by the tenant's entry and move mark being as read with
 * the tenant not on this shard, and waits up to 10 s for every registered instance to report a
 * config revision at least the barrier's. An instance reports a revision only once its writes
 * begun under the older config have finished (writes-in-flight.ts), as `tenants move` relies on;
 * one that read the whole config after the barrier (started later, or its watch cancelled)
 * reports it too, since the barrier, unlike the entry's delete, is a key. So the wait holds
 * however the entry went (`tenants remove`, etcdctl, `config apply`) and whatever came before it
 * (a removal record left from an earlier removal of the id is not trusted). A registration the
 * config schema rejects cannot be judged and is waited on, and refused, as one behind, as is one
 * that lists the tenant's entry among those it rejects (instance-registration.ts). Not covered:
 * an instance cut off from etcd long enough to lose its registration (docs/operations.md, "Taking a
 * tenant off").
 */
async function waitUntilEveryInstanceApplied(ctx: CtlContext, id: string, shardId: string): Promise<void> {
  const barrier = await putBarrier(ctx, id, shardId);
  const deadline = Date.now() + REMOVAL_APPLIED_WAIT_MS;
  for (;;) {
    const behind = (await registrations(ctx)).flatMap(({ instance, info, reason }) => {
      if (!info) return [`${instance} (its registration is rejected: ${reason})`];
      if (info.configRevision < barrier) return [`${instance} (at revision ${info.configRevision})`];
      // applied it, but rejects the tenant's entry: it may serve its last good value, on this
      // shard (a shard or passwordEnv it cannot use that the CLI can)
      if (info.rejectedTenants?.includes(id))
        return [`${instance} (rejects the entry of tenant ${id}: it may serve its last good value)`];
      if (info.rejectedTenantsTruncated)
        return [`${instance} (rejects more tenant entries than it lists: it may serve its last good value)`];
      return [];
    });
    if (behind.length === 0) return;
    if (Date.now() >= deadline) {
      throw new UserError(
        `instance(s) ${behind.join(', ')}, ${REMOVAL_APPLIED_WAIT_MS / 1000} s after revision ${barrier} (a barrier put once tenant ${id} was off shard ${shardId}): one that has not applied that revision, or rejects the tenant's entry, could write its rows after they are deleted; nothing deleted (check GET /health/config there, and run again once each has applied it or its registration is gone)`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Every registration under `instances/`, read alone (not the whole prefix, every 200 ms): its
 * value as the instances' schema reads it, or why that rejects it.
 */
async function registrations(
  ctx: CtlContext,
): Promise<{ instance: string; info?: InstanceInfo; reason?: string }[]> {
  const res = await ctx.call(() => ctx.etcd.getAll().prefix(`${ctx.prefix}instances/`).exec());
  return res.kvs.map((kv) => {
    const key = kv.key.toString('utf8').slice(ctx.prefix.length);
    const instance = key.slice('instances/'.length);
    const r = parseConfigKey(key, configValueText(kv.value));
    if (r.ok && r.parsed.type === 'instance') return { instance, info: r.parsed.value };
    return { instance, reason: r.ok ? 'not a registration' : r.reason };
  });
}

/**
 * Puts `runtime/barrier` only while the tenant's entry and move mark are as read, with the tenant
 * not on `shardId` (inUse): the barrier's revision then orders after its removal. Answers that
 * revision. An entry placed on this shard meanwhile refuses (exit 1), nothing deleted.
 */
async function putBarrier(ctx: CtlContext, id: string, shardId: string): Promise<number> {
  const value = JSON.stringify({
    by: `tenants delete-rows ${id} --shard ${shardId}`,
    at: new Date().toISOString(),
  });
  for (let attempt = 1; ; attempt++) {
    const read = await readPrefix(ctx);
    const use = await inUse(ctx, id, shardId, read);
    if (use) throw refused(use);
    const entry = `${ctx.prefix}tenants/${id}`;
    const mark = `${ctx.prefix}moving/${id}`;
    const res = await ctx.call(
      () =>
        ctx.etcd
          .if(entry, 'Mod', '==', read.mods.get(`tenants/${id}`) ?? 0)
          .and(mark, 'Mod', '==', read.mods.get(`moving/${id}`) ?? 0)
          .then(ctx.etcd.put(`${ctx.prefix}${BARRIER_KEY}`).value(value))
          .commit(),
      { write: true },
    );
    if (res.succeeded) return Number(res.header.revision);
    if (attempt >= BARRIER_ATTEMPTS)
      throw new ConcurrentChangeError(
        `tenant ${id}'s entry kept changing while this command read it; nothing deleted, re-run the command`,
      );
  }
}

export async function deleteTenantRowsCommand(
  ctx: CtlContext,
  id: string,
  opts: { shard: string; yes?: boolean },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid tenant id "${id}": must match ${ID_PATTERN.source}`);
  const read = await readPrefix(ctx);
  const { snapshot, rejected } = loadState(read);
  const shard = snapshot.shards.get(opts.shard);
  if (!shard) {
    const known = [...snapshot.shards.keys()].sort((a, b) => a.localeCompare(b)).join(', ');
    throw new UserError(`unknown shard "${opts.shard}" (known: ${known}); nothing deleted`);
  }
  const use = await inUse(ctx, id, opts.shard, read);
  if (use) throw refused(use);
  if (!opts.yes) {
    throw new UserError(
      `deleting every row of tenant ${id} on shard ${opts.shard} cannot be undone; re-run with --yes`,
    );
  }
  if (shardPassword(ctx.env, shard.passwordEnv) === undefined) {
    throw new UserError(
      `the rows of shard ${opts.shard} need the database password: set ${shard.passwordEnv ?? 'SHARDGATE_DB_PASSWORD'}; nothing deleted`,
    );
  }
  const lock = await acquireMoveLock(ctx, id);
  try {
    // a move that began between the check above and the lock left its record or placed the
    // tenant here: judged again under the lock
    const late = await inUse(ctx, id, opts.shard);
    if (late) throw refused(late);
    await waitUntilEveryInstanceApplied(ctx, id, opts.shard);
    // the worker's retention as it enforces it: a rejected value is not what it runs, so no mail
    // is deleted then (a younger one than it keeps would let a redelivered copy be sent twice)
    const retention = rejected.some((r) => r.key === 'mail/outbox_retention_hours')
      ? undefined
      : snapshot.mail.outboxRetentionHours;
    const done = await deleteOnMaster(ctx, id, opts.shard, shard, retention ?? 0);
    // an entry placed here meanwhile without the lock (by hand, `config apply`, an older CLI): its
    // first rows may be gone
    const placed = await inUse(ctx, id, opts.shard);
    await updateRemovalRecord(ctx, id, opts.shard, undefined);
    await forgetTenantKeys(ctx, id, opts.shard);
    const counts = [
      `${done.rows.members} member(s)`,
      `${done.rows.books} book(s)`,
      `${done.rows.loans} loan(s)`,
      `${done.rows.idempotency_keys} idempotency key(s)`,
      `${done.mails} delivered mail(s)`,
    ].join(', ');
    const why =
      retention === undefined
        ? 'mail/outbox_retention_hours is rejected, so the worker runs a value this command cannot know'
        : retention === 0
          ? 'mail/outbox_retention_hours is 0: the worker keeps every mail'
          : `they were delivered within mail/outbox_retention_hours (${retention} h): they stay until the worker purges them, so a redelivered copy is not sent twice`;
    const kept = [
      done.recent > 0 ? `${done.recent} delivered mail(s) stay (${why})` : '',
      done.undelivered > 0
        ? `${done.undelivered} mail(s) not delivered (due, retrying or dead-lettered) stay in the outbox`
        : '',
    ].filter(Boolean);
    const line = done.noSchema
      ? `shard ${opts.shard}: its database has no schema (never migrated), so no rows of tenant ${id}`
      : `shard ${opts.shard}: deleted ${counts} of tenant ${id}${kept.map((k) => `; ${k}`).join('')}`;
    if (placed)
      throw new UserError(
        done.noSchema
          ? `${line}; but meanwhile ${placed.why}`
          : `${line}; but meanwhile ${placed.why}: rows it wrote before the delete ended may be gone`,
      );
    ctx.out(`${line}; the id is free there`);
  } finally {
    await lock.release().catch(() => {});
  }
}

async function deleteOnMaster(
  ctx: CtlContext,
  id: string,
  shardId: string,
  shard: ShardConfig,
  retentionHours: number,
): Promise<{
  rows: Awaited<ReturnType<typeof deleteTenantRows>>;
  mails: number;
  recent: number;
  undelivered: number;
  /** the database has none of the tenant tables: never migrated */
  noSchema?: true;
}> {
  // every statement bounded: a master that stops answering is exit 2, and the move lock goes
  const connection = await connectShardServer(ctx.env, shardId, shard, shard.master, {
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
  });
  try {
    // a database never migrated holds no rows: the id is free there (before, the removal record
    // of a tenant placed there could only be deleted with etcdctl: an outside check)
    if (!(await hasTenantTables(connection)))
      return { rows: noRows(), mails: 0, recent: 0, undelivered: 0, noSchema: true };
    const rows = await deleteTenantRows(connection, id);
    let mails = 0;
    // as the worker's purge (outbox-store.ts purgeDelivered): created and delivered that long ago
    for (; retentionHours > 0; ) {
      const [result] = await connection.query<ResultSetHeader>(
        `DELETE FROM outbox WHERE tenant_id = ? AND id < ? AND delivered_at < NOW(3) - INTERVAL ? SECOND LIMIT ${DELIVERED_PAGE_ROWS}`,
        [id, idFloor(Date.now() - retentionHours * HOUR_MS), retentionHours * 3600],
      );
      mails += result.affectedRows;
      if (result.affectedRows < DELIVERED_PAGE_ROWS) break;
    }
    const [left] = await connection.query<RowDataPacket[]>(
      'SELECT COALESCE(SUM(delivered_at IS NOT NULL), 0) AS recent, COALESCE(SUM(delivered_at IS NULL), 0) AS undelivered FROM outbox WHERE tenant_id = ?',
      [id],
    );
    return {
      rows,
      mails,
      recent: Number(left[0]?.recent ?? 0),
      undelivered: Number(left[0]?.undelivered ?? 0),
    };
  } catch (error) {
    if (error instanceof UnreachableError) throw error;
    throw new UserError(
      `shard ${shardId}: ${(error as Error).message.split('\n')[0]}; what was deleted before it stays deleted: once that is fixed, run the command again for the rest`,
    );
  } finally {
    connection.destroy();
  }
}

/** whether the connection's database has any of the tables that hold a tenant's rows */
async function hasTenantTables(connection: Connection): Promise<boolean> {
  const names = [...TENANT_TABLES.map((t) => t.name), 'outbox'];
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN (${names.map(() => '?').join(', ')})`,
    names,
  );
  return Number(rows[0]?.n ?? 0) > 0;
}

function noRows(): Awaited<ReturnType<typeof deleteTenantRows>> {
  return Object.fromEntries(TENANT_TABLES.map((t) => [t.name, 0])) as Awaited<
    ReturnType<typeof deleteTenantRows>
  >;
}

const HOUR_MS = 3_600_000;
/** one DELETE of at most 1,000 rows, or the count: far more than either takes */
const STATEMENT_TIMEOUT_MS = 30_000;
