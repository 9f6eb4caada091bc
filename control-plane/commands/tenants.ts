/**
 * `tenants create <id> [--shard S] [--status] [--name]`, `tenants list`, `tenants show <id>`,
 * `tenants set-status <id> <status>`, `tenants remove <id> --yes`.
 * Without --shard, the `placement` policy picks the shard: `least-tenants` = the shard of the
 * policy's list holding the fewest tenants (first in list order on a tie); with no `placement`
 * key, every shard is a candidate. A `placement` the schema rejects is refused, not bypassed: the
 * API instances keep its last good value (shown in GET /health/config), which this read cannot
 * see, so picking from every shard could place a tenant on one that policy leaves out.
 *
 * `set-status` refuses an entry the instances reject (they keep enforcing its last good value,
 * unknown here), unless the new status is exactly what makes the entry valid again: then it says
 * it goes from the status in force (the last good value in etcd's history) and keeps that value's
 * name when the rejected entry has none.
 *
 * `list` and `show` read every `tenants/` key etcd holds, not only the ones the schema accepts:
 * an entry the API instances reject (unknown shard, not JSON, a bad status, …) is shown with
 * its `problem`, never hidden.
 */

import { nextEpoch } from '../../src/cache/cache-epoch.js';
import type { ConfigState } from '../../src/config/config-state.js';
import { formatHostPort } from '../../src/config/host-port.js';
import { looseEntry, looseTenantEntry } from '../../src/config/loose-entry.js';
import {
  ID_PATTERN,
  type ShardConfig,
  TENANT_STATUSES,
  type TenantEntry,
  tenantCacheEpochKey,
  tenantSchema,
} from '../../src/config/schema.js';
import { alignColumns } from '../columns.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { checkDisplayName, printableName } from '../display-name.js';
import { etcdctlPut } from '../etcdctl-put.js';
import { forgetMoveRecord } from '../forget-move-record.js';
import { anyRows, checkLeftoverRows, type RowCheck, uncheckedWarning } from '../leftover-rows.js';
import { withMoveLock } from '../move-lock.js';
import { moveRunning, readMoveRecord } from '../move-record.js';
import { loadState, type PrefixRead, readPrefix } from '../prefix-read.js';
import { type RemovalRecord, readRemovalRecord, updateRemovalRecord } from '../removal-record.js';
import { stateInForce } from '../state-in-force.js';
import { forgetTenantKeys } from '../tenant-cache.js';
import { clipped, oneLine, SHOWN_CHARS } from '../terminal-safe.js';
import { unknownTenant } from '../unknown-tenant.js';
import { writeKeys } from '../write-keys.js';

type TenantStatus = TenantEntry['status'];
const TENANTS = 'tenants/';

function state(read: PrefixRead) {
  return loadState(read).snapshot;
}

/** A status word checked against the schema's enum; `what` names the argument in the error. */
function parseStatus(status: string, what: string): TenantStatus {
  if (!(TENANT_STATUSES as readonly string[]).includes(status)) {
    throw new UserError(`invalid ${what} "${status}": one of ${TENANT_STATUSES.join(', ')}`);
  }
  return status as TenantStatus;
}

/** One `tenants/` entry as etcd holds it. */
export interface TenantRow {
  id: string;
  /** null when the value does not name one (not JSON, wrong type) */
  shard: string | null;
  status: string | null;
  name?: string;
  /** why the schema rejects the entry (so the API instances do); absent when it is valid */
  problem?: string;
  /** the raw value, given with a problem */
  value?: string;
  /**
   * with a problem: shard, status and name are the entry's last good value, which the instances
   * enforce (restored from etcd's history, as they restore it), not what etcd holds now
   */
  lastGood?: true;
}

/**
 * Every `tenants/` key, sorted by id: a valid entry as the schema reads it (status defaulted), a
 * rejected one with the schema's reason as `problem` and, given `s` = stateInForce's state, its
 * last good value where it has one (`lastGood`), else whatever shard/status the value names.
 */
export function tenantRows(read: PrefixRead, s: ConfigState = loadState(read)): TenantRow[] {
  const reasons = new Map(s.rejected.map((r) => [r.key, r.reason]));
  const rows: TenantRow[] = [];
  for (const [key, raw] of read.entries) {
    if (!key.startsWith(TENANTS)) continue;
    const id = key.slice(TENANTS.length);
    const good = s.snapshot.tenants.get(id);
    const problem = reasons.get(key);
    if (good) {
      rows.push({
        id,
        ...good,
        ...(problem === undefined ? {} : { problem, value: raw, lastGood: true as const }),
      });
      continue;
    }
    const loose = looseTenantEntry(raw);
    rows.push({
      id,
      shard: loose?.shard ?? null,
      status: loose?.status ?? null,
      ...(loose?.name ? { name: loose.name } : {}),
      problem: problem ?? 'rejected by the config schema',
      value: raw,
    });
  }
  return rows.sort((a, b) => a.id.localeCompare(b.id));
}

/** The shard `tenants create` puts a tenant on without --shard (see the top of this file). */
export function pickShard(read: PrefixRead, prefix: string): string {
  const s = loadState(read);
  const rejected = s.rejected.find((r) => r.key === 'placement');
  if (rejected) {
    throw new UserError(
      `${prefix}placement is rejected by the config schema (${rejected.reason}); the API instances keep its last good value, which etcd no longer holds, so no shard is picked: fix placement (\`config apply\`) or pass --shard`,
    );
  }
  const snap = s.snapshot;
  const candidates = snap.placement?.shards ?? [...snap.shards.keys()].sort();
  if (candidates.length === 0)
    throw new UserError('no shard to place the tenant on: add one with `shards add` or pass --shard');
  const counts = new Map(candidates.map((s) => [s, 0]));
  for (const t of snap.tenants.values())
    if (counts.has(t.shard)) counts.set(t.shard, counts.get(t.shard)! + 1);
  return candidates.reduce((best, s) => (counts.get(s)! < counts.get(best)! ? s : best), candidates[0]!);
}

/**
 * `tenants create`: refuses an id whose rows an earlier tenant of that id left on the shard
 * (leftover-rows.ts: they would be this tenant's, members and tokens included) unless
 * `adoptRows` (`--adopt-rows`: bringing such a tenant back on purpose). When the rows cannot be
 * counted (no database password, the check failed), an id that `tenants remove` recorded as
 * removed from that shard with its rows left (removal-record.ts) is refused too; any other id is
 * created with a warning that the rows were not checked. A shard whose master answers that it has
 * no tables (never migrated) is refused, unless `adoptRows` (which skips the look altogether).
 */
export async function createTenant(
  ctx: CtlContext,
  id: string,
  opts: { shard?: string; status?: string; name?: string; adoptRows?: boolean },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid tenant id "${id}": must match ${ID_PATTERN.source}`);
  const status = opts.status ? parseStatus(opts.status, '--status') : 'active';
  const name = opts.name === undefined ? undefined : checkDisplayName(opts.name, '--name');
  const checked = new Map<string, { rows: RowCheck; removed: RemovalRecord | undefined }>();
  const forgotten = new Set<string>();
  let placed: string | undefined;
  // a delete-rows (or move) of this id running now would delete or copy the new tenant's first
  // rows under it: they hold the same lock, so one waits for nothing and is refused
  await withMoveLock(ctx, id, async () => {
    await writeKeys(ctx, async (read) => {
      const existing = read.entries.get(`tenants/${id}`);
      if (existing) throw new UserError(`tenant ${id} already exists: ${existing}`);
      const shard = opts.shard ?? pickShard(read, ctx.prefix);
      const shardConfig = state(read).shards.get(shard);
      placed = undefined;
      if (!opts.adoptRows && shardConfig) {
        if (!checked.has(shard)) {
          const rows = await checkLeftoverRows(ctx.env, id, shard, shardConfig);
          const removed = 'unchecked' in rows ? await readRemovalRecord(ctx, id, shard) : undefined;
          checked.set(shard, { rows, removed });
        }
        const { rows, removed } = checked.get(shard)!;
        // every request of the tenant would fail there (503, the log naming the missing table)
        if ('noSchema' in rows)
          throw new UserError(
            `shard ${shard} has no schema (${rows.unchecked}): put it there first with \`npm run migrate -- --shard ${shard}\`; nothing written`,
          );
        if (anyRows(rows))
          throw new UserError(
            `tenant id ${id} was used before: shard ${shard} still holds its rows (${rows.members} member(s), ${rows.books} book(s), ${rows.loans} loan(s)), and a tenant created with it gets them back, members, librarian and their tokens included; pick another id, or pass --adopt-rows to bring that tenant back`,
          );
        if ('unchecked' in rows && removed)
          throw new UserError(
            `tenant id ${id} was removed from shard ${shard}${removed.removedAt ? ` at ${removed.removedAt}` : ''} with its rows left there, and they cannot be counted now (${rows.unchecked}): a tenant created with it there gets them back, members, librarian and their tokens included; set the database password so they can be counted, pick another id or --shard, or pass --adopt-rows to bring that tenant back`,
          );
      }
      const entry: TenantEntry = { shard, status };
      if (name !== undefined) entry.name = name;
      // before the entry exists, so no instance reads what an earlier tenant of the id left there
      if (!forgotten.has(shard)) {
        await forgetTenantKeys(ctx, id, shard);
        forgotten.add(shard);
      }
      placed = shard;
      return new Map([[`tenants/${id}`, JSON.stringify(entry)]]);
    });
    if (placed === undefined) return;
    const rows = checked.get(placed)?.rows;
    if (rows && 'unchecked' in rows) ctx.warn(uncheckedWarning(id, placed, rows.unchecked));
    // the rows were taken back on purpose, or there are none: the id is in use on that shard again
    else if (opts.adoptRows || rows) await updateRemovalRecord(ctx, id, placed, undefined);
  });
}

/**
 * Why the instances reject tenant `id`'s entry in `read`; undefined when it is valid (or absent).
 * Judged as they judge it (state-in-force.ts): a tenant on a shard deleted under it is valid, the
 * instances keep that shard.
 */
async function tenantProblem(ctx: CtlContext, read: PrefixRead, id: string): Promise<string | undefined> {
  const { state } = await stateInForce(ctx, read);
  return state.rejected.find((r) => r.key === `${TENANTS}${id}`)?.reason;
}

/**
 * Change only the status of an existing entry (its other fields are kept as they are). The
 * write goes through writeKeys: the whole config is validated by the schema and the transaction
 * is refused if any config key, this one included, changed after the read.
 *
 * An entry the schema rejects is not what the instances enforce (they keep its last good value,
 * which etcd no longer holds), so its status says nothing about the status in force: the command
 * then refuses, naming the problem and a put that fixes it, unless writing the new status alone
 * makes the entry valid (a bad status is the problem); it never says "already …" of such an entry.
 */
/**
 * The entry's display name for a put that fixes it, when the schema takes it: a suggested put
 * without it dropped the name the tenant's mails carry (an outside check).
 */
function keptName(name: unknown): { name?: string } {
  return typeof name === 'string' && tenantSchema.shape.name.safeParse(name).success ? { name } : {};
}

export async function setTenantStatus(ctx: CtlContext, id: string, statusText: string): Promise<void> {
  const status = parseStatus(statusText, 'status');
  const key = `${TENANTS}${id}`;
  let from = '';
  let keptNote = '';
  let markOnly = false;
  await writeKeys(
    ctx,
    async (read) => {
      const raw = read.entries.get(key);
      if (raw === undefined) throw unknownTenant(id);
      const entry = looseEntry(raw);
      if (!entry) {
        // the shard of its last good value, which the instances enforce, where etcd still has it
        const good = (await stateInForce(ctx, read)).state.snapshot.tenants.get(id);
        const fix = { shard: good?.shard ?? '<shard>', status, ...keptName(good?.name) };
        throw new UserError(
          `tenant ${id} has no readable entry (${ctx.prefix}${key} = ${raw} is not a JSON object); nothing written. Fix it, e.g. \`${etcdctlPut(ctx.prefix + key, JSON.stringify(fix))}\`, or remove it with \`tenants remove\``,
        );
      }
      let next = JSON.stringify({ ...entry, status });
      const problem = await tenantProblem(ctx, read, id);
      // an absent status is the schema's default
      from = entry.status === undefined ? 'active' : String(entry.status);
      keptNote = '';
      if (problem !== undefined) {
        const after = { ...read, entries: new Map(read.entries).set(key, next) };
        if ((await tenantProblem(ctx, after, id)) !== undefined) {
          // no value makes a key of an invalid id valid: only its removal helps
          if (!ID_PATTERN.test(id))
            throw new UserError(
              `tenant ${id} has an entry the API instances reject (${problem}): no value makes it valid; nothing written. Remove it with \`tenants remove\``,
            );
          const shard =
            typeof entry.shard === 'string' && state(read).shards.has(entry.shard) ? entry.shard : '<shard>';
          const fix = { shard, status, ...keptName(entry.name) };
          throw new UserError(
            `tenant ${id} has an entry the API instances reject (${problem}): they keep its last good value, if they had one, so its status in force is not known here; nothing written. Make the entry valid first, e.g. \`${etcdctlPut(ctx.prefix + key, JSON.stringify(fix))}\``,
          );
        }
        // the new status makes the entry valid: the instances go from the value they enforce, its
        // last good one, not from the rejected entry's status (an outside check: "readonly ->
        // active" was printed for a tenant active in force); a name the rejected entry lost is
        // kept from that value (it was dropped, and the tenant's mails changed their subject)
        const good = (await stateInForce(ctx, read)).state.snapshot.tenants.get(id);
        // the entry as written, parsed as the instances will (a duplicate key's last value)
        const fixed = JSON.parse(next) as { shard?: unknown; name?: unknown };
        // (before the shard check: its hint to put the entry as it is keeps the name too)
        if (good?.name !== undefined && fixed.name === undefined) {
          next = JSON.stringify({ ...entry, status, name: good.name });
          keptNote = `; name ${JSON.stringify(good.name)} kept from the value in force`;
        } else if (good && fixed.name !== good.name) {
          keptNote = `; name ${JSON.stringify(good.name ?? id)} in force becomes ${JSON.stringify(fixed.name ?? id)}`;
        }
        if (good && fixed.shard !== good.shard) {
          // a review: `{"shard":"s1","shard":"s2"}` with s1 in force was written as s2, the tenant
          // routed to a shard without its rows, no move run
          const restore = { shard: good.shard, status, ...keptName(fixed.name ?? good.name) };
          throw new UserError(
            `tenant ${id} has an entry the API instances reject (${problem}) that names shard ${String(fixed.shard)}, while they route the tenant to shard ${good.shard} (its last good value): writing it would send the tenant to a shard without its rows; nothing written. Put the entry back on its shard, e.g. \`${etcdctlPut(ctx.prefix + key, JSON.stringify(restore))}\`, then \`tenants move ${id} --to ${String(fixed.shard)}\` if it should move (if its rows are on shard ${String(fixed.shard)} already, put the entry yourself: \`${etcdctlPut(ctx.prefix + key, next)}\`)`,
          );
        }
        from = good
          ? `${good.status} (in force; its entry was rejected: ${problem})`
          : `rejected (${problem}), with no good value in etcd's history (never valid, or compacted away: the instances may still enforce an older one)`;
      }
      // an operator's status is no move's: a move mark left by a stopped move goes with it, also
      // when the status stays (an operator keeping a stopped move's tenant readonly)
      markOnly = from === status && problem === undefined;
      if (markOnly) return new Map([[`moving/${id}`, undefined]]);
      return new Map([
        [key, next],
        [`moving/${id}`, undefined],
      ]);
    },
    {
      changed: () => [
        markOnly
          ? `tenant ${id}: ${status}, now as an operator's (the mark of a stopped move, moving/${id}, deleted: its writes no longer answer Retry-After)`
          : `tenant ${id}: ${from} -> ${status}${keptNote}`,
      ],
      unchanged: `tenant ${id}: already ${status}; nothing written`,
    },
  );
}

/**
 * What `tenants remove` says of the id after the removal, from the rows of the tenant on its
 * shard's master (checkLeftoverRows, as `tenants create` counts them): not free when rows were
 * found, maybe not free when they could not be counted (`{ unchecked: reason }`: no password to
 * count with, the master unreachable or refusing it; undefined: the entry names no shard of the
 * shard map), free when none were. Its one line says why it could not count: `create`'s warning
 * ("did not check … this tenant gets its members … back") speaks of a tenant being created, and
 * printed by remove it read as if one were (an outside check).
 * `recorded`: a removal record is left (recordRemoval), so `create` refuses the id on that shard
 * also when it cannot count the rows.
 */
export function idAfterRemoval(
  id: string,
  shard: string | undefined,
  rows: RowCheck | undefined,
  recorded = false,
): string {
  const comesBack = 'members and their tokens included';
  const refuses = recorded
    ? `\`tenants create\` of it on shard ${shard} refuses it while the rows are there or cannot be counted, unless --adopt-rows`
    : `\`tenants create\` refuses it while the rows are there, unless --adopt-rows`;
  if (anyRows(rows)) {
    return `the id ${id} is not free: shard ${shard} still holds its rows (${rows.members} member(s), ${rows.books} book(s), ${rows.loans} loan(s)), and a tenant created with it on that shard would get them back, ${comesBack} (${refuses}); \`tenants delete-rows ${id} --shard ${shard} --yes\` deletes them`;
  }
  if (rows === undefined || 'unchecked' in rows) {
    const why =
      rows === undefined
        ? "that needs its shard in the shard map, SHARDGATE_DB_PASSWORD or the shard's passwordEnv set, and the master to let the check in"
        : rows.unchecked;
    return `the id ${id} may not be free: its rows were not checked (${why}); a tenant created with it on the same shard would get back whatever rows it has there, ${comesBack} (${refuses})`;
  }
  return `shard ${shard} holds no member, book or loan of tenant ${id}: a tenant created with this id there starts empty`;
}

/**
 * Leave the removal record `tenants create` needs to refuse the id on that shard without a
 * database password (removal-record.ts), or delete an old one when no rows are left. The removal
 * is written already: a failure here is a warning naming what it risks.
 */
async function recordRemoval(ctx: CtlContext, id: string, shard: string, rows: RowCheck) {
  await updateRemovalRecord(
    ctx,
    id,
    shard,
    'unchecked' in rows ? 'unchecked' : anyRows(rows) ? 'present' : undefined,
  );
}

/**
 * Delete the directory entry only. The tenant's rows stay on its shard (nothing is deleted
 * there); the tenant answers 404 at once, hence --yes. The id stays taken by those rows: the
 * output says so when rows were found or could not be checked (idAfterRemoval).
 */
export async function removeTenant(ctx: CtlContext, id: string, opts: { yes?: boolean }): Promise<void> {
  const key = `tenants/${id}`;
  let was = '';
  let shard: string | undefined;
  let shardConfig: ShardConfig | undefined;
  let absent = false;
  await writeKeys(
    ctx,
    (read) => {
      const raw = read.entries.get(key);
      absent = raw === undefined;
      if (raw === undefined) throw unknownTenant(id);
      shard = looseTenantEntry(raw)?.shard;
      shardConfig = shard ? state(read).shards.get(shard) : undefined;
      const rows = !shard
        ? 'its rows stay on its shard'
        : state(read).shards.has(shard)
          ? `its rows stay on shard ${shard}`
          : `its rows stay where they are (its entry names shard ${shard}, which the shard map does not have)`;
      if (!opts.yes) {
        throw new UserError(
          `removing tenant ${id} makes it answer 404 at once (${rows}, only the directory entry goes); re-run with --yes`,
        );
      }
      was = `tenant ${id} removed from the directory (was ${raw}); ${rows}, nothing was deleted there`;
      return new Map([
        [key, undefined],
        [`moving/${id}`, undefined],
      ]);
    },
    { changed: () => [was] },
  ).catch(async (error: unknown) => {
    if (!absent) throw error;
    await removeLeftRecord(ctx, id, opts.yes);
  });
  if (absent) return;
  // the rows are keyed by the tenant id: a new directory entry of that id on that shard finds
  // them again, members, librarian and unexpired tokens included. Counted once the removal is
  // written; a count that cannot run is said in remove's own line (idAfterRemoval), no warning.
  const rows = shard && shardConfig ? await checkLeftoverRows(ctx.env, id, shard, shardConfig) : undefined;
  const recorded = shard !== undefined && rows !== undefined && ID_PATTERN.test(id);
  ctx.out(idAfterRemoval(id, shard, rows, recorded));
  if (recorded) await recordRemoval(ctx, id, shard!, rows!);
  // its own cache epoch (moved after its writes of unknown outcome) goes once what it retired is
  // deleted from Redis, so etcd keeps no key per tenant ever removed; not before: back at 0, an
  // entry filled before its first move would be served again (a review). An uncertain write of
  // the tenant still running may put it again: one number left, harmless.
  // Redis not answering: a fresh epoch instead, so nothing cached for the id before stays
  // servable to a tenant created with it later (whose own clear may fail too: a review)
  const cleared = await forgetTenantKeys(ctx, id);
  const epochKey = `${ctx.prefix}${tenantCacheEpochKey(id)}`;
  await ctx
    .call(
      async () => {
        if (cleared) await ctx.etcd.delete().key(epochKey).exec();
        else await ctx.etcd.put(epochKey).value(String(nextEpoch())).exec();
      },
      { write: true },
    )
    .catch((error: unknown) =>
      ctx.warn(`${epochKey} could not be ${cleared ? 'deleted' : 'moved'} (${(error as Error).message})`),
    );
  // a tenant created later with this id must not inherit a dead move's record
  const record = await readMoveRecord(ctx, id).catch(() => undefined);
  if (record) {
    const running = await moveRunning(ctx, id).catch(() => false);
    const line = await forgetMoveRecord(ctx, id, record, shard, running);
    if (line) ctx.out(line);
  }
}

/**
 * `tenants remove` of an id without an entry (deleted by hand, or by a `config apply` of an
 * earlier version) whose dead move's record is still there: what `remove` does with such a record
 * (forgetMoveRecord), with --yes. Without a record, or while a move holds its lock, the id is an
 * unknown tenant.
 */
async function removeLeftRecord(ctx: CtlContext, id: string, yes: boolean | undefined): Promise<void> {
  const record = await readMoveRecord(ctx, id).catch(() => undefined);
  if (!record || (await moveRunning(ctx, id))) throw unknownTenant(id);
  if (!yes) {
    throw new UserError(
      `tenant ${id} has no entry, but the record of its interrupted move from shard ${record.from} to ${record.to} is there; re-run with --yes to delete the record (the rows stay, recorded on both shards)`,
    );
  }
  const line = await forgetMoveRecord(ctx, id, record);
  if (!line)
    throw new UserError(
      `another record of a move of tenant ${id} was written meanwhile, and stays (the rows are recorded on shards ${record.from} and ${record.to}): \`tenants show ${id}\` says what it holds`,
    );
  ctx.out(`tenant ${id} has no entry; ${line}`);
}

/**
 * A row as the listings show it: a rejected entry's value, name and problem `clipped` (a valid
 * name is at most 100 characters); `valueLength` says how long the value is when it was cut.
 */
function shownRow(row: TenantRow): TenantRow & { valueLength?: number } {
  if (!row.problem) return row;
  const long = row.value !== undefined && row.value.length > SHOWN_CHARS;
  return {
    ...row,
    ...(row.name === undefined ? {} : { name: clipped(row.name) }),
    problem: clipped(row.problem),
    ...(row.value === undefined ? {} : { value: clipped(row.value) }),
    ...(long ? { valueLength: row.value!.length } : {}),
  };
}

export async function listTenants(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const read = await readPrefix(ctx);
  const rows = tenantRows(read, (await stateInForce(ctx, read)).state).map(shownRow);
  if (opts.json) return ctx.out(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return ctx.out('no tenants');
  const table = rows.map((r) => [
    // a blank in an id (a plain etcdctl put) is shown escaped: it would forge a column for awk
    oneLine(r.id).replace(/ /g, '\\u0020'),
    r.shard ?? '?',
    r.status ?? '?',
    r.name ? printableName(r.name) : '',
    r.problem
      ? `problem: ${oneLine(r.problem)}${r.lastGood ? ' (the shard and status shown, in force)' : ''}`
      : '',
  ]);
  for (const line of alignColumns(table)) ctx.out(line);
  const bad = rows.filter((r) => r.problem).length;
  if (bad > 0) {
    ctx.out(
      `${bad} of ${rows.length} entries have a problem: the API instances reject them and keep the last good value, if they had one (GET /health/config)`,
    );
  }
}

export async function showTenant(ctx: CtlContext, id: string, opts: { json?: boolean }): Promise<void> {
  const read = await readPrefix(ctx);
  const found = tenantRows(read, (await stateInForce(ctx, read)).state).find((r) => r.id === id);
  if (!found) {
    // an entry deleted by hand while a dead move's record stays: `status` lists that move
    const record = await readMoveRecord(ctx, id).catch(() => undefined);
    if (!record || (await moveRunning(ctx, id))) throw unknownTenant(id);
    throw new UserError(
      `tenant ${id} has no entry, but the record of its interrupted move from shard ${record.from} to ${record.to} (started ${record.startedAt}) is there: rows of it may be on both shards; \`tenants remove ${id} --yes\` deletes the record, then \`tenants delete-rows ${id} --shard <shard> --yes\` deletes the rows`,
    );
  }
  const row = shownRow(found);
  const shard = (row.problem && !row.lastGood) || !row.shard ? undefined : state(read).shards.get(row.shard);
  const record = await readMoveRecord(ctx, id).catch((error: Error) => ({ problem: error.message }));
  const move = record && {
    ...record,
    running: 'problem' in record ? undefined : await moveRunning(ctx, id),
  };
  const view = { ...row, shardConfig: shard, ...(move ? { move } : {}) };
  if (opts.json) return ctx.out(JSON.stringify(view, null, 2));
  ctx.out(
    `tenant ${id}\n  shard:  ${row.shard ?? '?'}\n  status: ${row.status ?? '?'}${row.name ? `\n  name:   ${printableName(row.name)}` : ''}`,
  );
  if (shard) ctx.out(`  master: ${formatHostPort(shard.master.host, shard.master.port)}`);
  if (row.problem) {
    const inForce = row.lastGood
      ? '\n  (shard and status above: its last good value, which the instances enforce)'
      : '';
    ctx.out(`  problem: ${row.problem}\n  value:  ${row.value}${inForce}`);
  }
  if (move && 'problem' in move) ctx.out(`  move:   ${move.problem}`);
  else if (move) {
    ctx.out(
      move.running
        ? `  move:   to shard ${move.to}, running since ${move.startedAt} (its lock is held; a killed move's lock lapses 10 s after it died)`
        : `  move:   to shard ${move.to}, interrupted (started ${move.startedAt}): \`shardgate-ctl tenants move ${id} --to ${move.to}\` finishes it${row.shard === move.from ? `, \`--to ${move.from}\` takes it back` : ''}`,
    );
  }
}
