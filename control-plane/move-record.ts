/**
 * The record of a running or interrupted `tenants move`, beside the config prefix and not in it
 * (`/shardgate.moves/<tenantId>`, next to the move lock `/shardgate.locks/tenant-move/<id>`), so
 * no instance watches it and `config export` leaves it out.
 *
 * A move writes it, under the move lock, before its first change (the tenant's `readonly` status
 * or, for a tenant that is readonly or suspended already, the copy), and deletes it after its last
 * step or after an undo that took everything back. A record that a later move finds under the
 * same lock therefore belongs to a move that died (SIGKILL, a lost machine, an undo that could not
 * reach etcd): it says where that move was going, the tenant's status before it, and whether the
 * source rows were to be kept, which is what the later move needs to finish it or take it back.
 */
import type { DeleteBuilder, PutBuilder } from 'etcd3';
import { z } from 'zod';
import { looseTenantEntry } from '../src/config/loose-entry.js';
import { ID_PATTERN, TENANT_STATUSES, type TenantEntry } from '../src/config/schema.js';
import { isCompactedError } from './compacted-error.js';
import type { CtlContext } from './ctl-context.js';
import { UserError } from './ctl-errors.js';

const recordSchema = z.strictObject({
  from: z.string().regex(ID_PATTERN),
  to: z.string().regex(ID_PATTERN),
  /** the tenant's status when the move began, restored at its end */
  status: z.enum(TENANT_STATUSES),
  keepSource: z.boolean(),
  startedAt: z.string().max(40),
  /** the etcd revision read when the move began: the tenant entry's history after it is the move's */
  startRevision: z.number().int().nonnegative().optional(),
  /**
   * set once the copy was verified, before the status is restored: what is left is restoring it
   * (where the entry still has the move's status) and deleting the source's rows
   */
  verified: z.boolean().optional(),
});

export type MoveRecord = z.infer<typeof recordSchema>;

/** the prefix without its trailing slash: `/shardgate/` → `/shardgate` */
export const base = (prefix: string) => prefix.replace(/\/$/, '');

export const moveLockKey = (prefix: string, id: string) => `${base(prefix)}.locks/tenant-move/${id}`;
export const moveRecordKey = (prefix: string, id: string) => `${base(prefix)}.moves/${id}`;

/** The status a tenant has while it moves: an active one turns readonly, others keep theirs. */
export const movingStatus = (status: TenantEntry['status']): TenantEntry['status'] =>
  status === 'active' ? 'readonly' : status;

/** The record of the tenant's move, if any; one that is not readable is a UserError naming its key. */
export async function readMoveRecord(ctx: CtlContext, id: string): Promise<MoveRecord | undefined> {
  const key = moveRecordKey(ctx.prefix, id);
  const raw = await ctx.call(() => ctx.etcd.get(key).string());
  if (raw === null) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  const result = recordSchema.safeParse(parsed);
  if (result.success) storedText.set(result.data, raw);
  if (!result.success) {
    throw new UserError(
      `the record of an interrupted move of tenant ${id} (${key}) is not readable: ${raw.slice(0, 200)}; check the tenant's rows on its shards, then delete the key with etcdctl`,
    );
  }
  return result.data;
}

/**
 * A move's record was deleted or rewritten (or, for a new move, found) where its own writes
 * expected otherwise: another command took the tenant while this move was stopped past its lock's
 * lease (`tenants remove` deletes the record with the entry; another `tenants move` resumes it and
 * writes it anew). The move writes nothing more.
 */
export class MoveRecordGoneError extends UserError {}

/**
 * The text each record object holds in etcd, as this process read or wrote it: the guard of the
 * next write or delete of it (writeMoveRecord, deleteMoveRecord).
 */
const storedText = new WeakMap<MoveRecord, string>();

/**
 * Writes the record: a new move's only where there is none (`create`), a running move's update
 * (`replacing` the record it read or wrote last) only where etcd still holds exactly that. Before,
 * an update was a plain put: a move stopped (SIGSTOP) past its lock's lease while `tenants remove`
 * took the tenant wrote its record back, marked verified, and no command could clear it (an
 * outside check); and a guard of "a record is there" let such a move overwrite the record of
 * another move that had resumed it meanwhile (a review). Throws MoveRecordGoneError, naming what
 * the move found, when the guard fails.
 */
export async function writeMoveRecord(
  ctx: CtlContext,
  id: string,
  record: MoveRecord,
  guard: { create: true } | { replacing: MoveRecord },
): Promise<void> {
  const key = moveRecordKey(ctx.prefix, id);
  const text = JSON.stringify(record);
  const written = await ctx.call(
    async () =>
      (
        await ('create' in guard
          ? ctx.etcd.if(key, 'Version', '==', 0)
          : ctx.etcd.if(key, 'Value', '==', textOf(guard.replacing))
        )
          .then(ctx.etcd.put(key).value(text))
          .commit()
      ).succeeded,
    { write: true },
  );
  if (!written) {
    throw new MoveRecordGoneError(
      'create' in guard
        ? `tenant ${id} has the record of another move (${key}) written since this one read it: another command took the tenant; this move writes nothing more`
        : `the record of this move of tenant ${id} (${key}) was deleted or rewritten while it ran (\`tenants remove\` deletes it, another \`tenants move\` resumes it, once this move's lock had lapsed: the move was stopped for over 10 s); this move writes nothing more`,
    );
  }
  storedText.set(record, text);
}

const textOf = (record: MoveRecord) => storedText.get(record) ?? JSON.stringify(record);

/**
 * Runs `op` (a put or delete of another key) in one etcd transaction with the check that etcd
 * still holds exactly the record `ours`; false, nothing done, when it does not: another command
 * took the tenant, and what it wrote stands.
 */
export async function whileRecordIs(
  ctx: CtlContext,
  id: string,
  ours: MoveRecord,
  op: PutBuilder | DeleteBuilder,
): Promise<boolean> {
  const key = moveRecordKey(ctx.prefix, id);
  return ctx.call(
    async () => (await ctx.etcd.if(key, 'Value', '==', textOf(ours)).then(op).commit()).succeeded,
    { write: true },
  );
}

/**
 * Deletes the record where etcd still holds exactly `ours`, the record the command read or wrote
 * last (whileRecordIs). Answers `deleted`; `absent` when there was none to delete (deleted by
 * another command, or a create that did not land: etcd fails a compare on a missing key, and
 * "rewritten" said so wrongly, a review); `rewritten` when etcd holds another record (another
 * command took the tenant, and its record stays).
 */
export async function deleteMoveRecord(
  ctx: CtlContext,
  id: string,
  ours: MoveRecord,
): Promise<'deleted' | 'absent' | 'rewritten'> {
  const key = moveRecordKey(ctx.prefix, id);
  if (await whileRecordIs(ctx, id, ours, ctx.etcd.delete().key(key))) return 'deleted';
  return (await ctx.call(() => ctx.etcd.get(key).string())) === null ? 'absent' : 'rewritten';
}

/** Whether a move of the tenant holds its lock now (a running move, not an interrupted one). */
export async function moveRunning(ctx: CtlContext, id: string): Promise<boolean> {
  const key = moveLockKey(ctx.prefix, id);
  // etcd3's Lock puts exactly this key under its lease
  return (await ctx.call(() => ctx.etcd.get(key).string())) !== null;
}

/**
 * Every tenant with a move record, and whether that move holds its lock now (`running`) or died
 * (`interrupted`: `tenants show <id>` says how to finish it or take it back). Two key-only
 * range reads. For `status`: an outside check found an interrupted move only with `tenants show`,
 * the tenant otherwise listed as merely readonly.
 */
export async function recordedMoves(
  ctx: CtlContext,
): Promise<{ tenant: string; state: 'running' | 'interrupted' }[]> {
  const records = `${base(ctx.prefix)}.moves/`;
  const locks = moveLockKey(ctx.prefix, '');
  const [moves, held] = await Promise.all([
    ctx.call(() => ctx.etcd.getAll().prefix(records).keys()),
    ctx.call(() => ctx.etcd.getAll().prefix(locks).keys()),
  ]);
  const locked = new Set(held.map((k) => k.slice(locks.length)));
  return moves
    .map((k) => k.slice(records.length))
    .sort()
    .map((tenant) => ({ tenant, state: locked.has(tenant) ? 'running' : 'interrupted' }));
}

/** how many versions of a tenant's entry `entryHistory` reads back at most */
const HISTORY_VERSIONS = 50;

export interface EntryVersion {
  shard: string | undefined;
  status: string | undefined;
  mod: number;
}

/**
 * The versions of `tenants/<id>` written after `since`, newest first, read back from etcd's
 * history starting at the entry's current mod revision `mod`; 'unknown' when that history is
 * compacted, longer than HISTORY_VERSIONS, or `since` is not known.
 */
export async function entryHistory(
  ctx: CtlContext,
  id: string,
  mod: number,
  since: number | undefined,
): Promise<EntryVersion[] | 'unknown'> {
  if (since === undefined) return 'unknown';
  const key = `${ctx.prefix}tenants/${id}`;
  const versions: EntryVersion[] = [];
  let at = mod;
  while (at > since) {
    if (versions.length >= HISTORY_VERSIONS) return 'unknown';
    const revision = at;
    const raw = await ctx.call(async () => {
      try {
        const res = await ctx.etcd.get(key).revision(String(revision)).exec();
        const kv = res.kvs[0];
        return kv ? { value: kv.value.toString('utf8'), mod: Number(kv.mod_revision) } : undefined;
      } catch (error) {
        if (isCompactedError(error)) return 'compacted';
        throw error;
      }
    });
    if (raw === 'compacted') return 'unknown';
    if (!raw || raw.mod <= since) break;
    // a version that is not a JSON object names no shard
    const entry = looseTenantEntry(raw.value);
    versions.push({ shard: entry?.shard, status: entry?.status, mod: raw.mod });
    at = raw.mod - 1;
  }
  return versions;
}
