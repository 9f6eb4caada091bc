/**
 * The one write protocol of the CLI: read the prefix at revision R (prefix-read.ts) → build the
 * desired changes (change-plan.ts) → validate the resulting whole config as the instances would
 * (validate-changes.ts, over the values in force) → commit all changes in ONE etcd transaction
 * guarded by "no managed key changed since R". Failure modes: an invalid change, or a transaction
 * etcd refuses as too large, is a UserError and nothing is written; a failed guard is a
 * ConcurrentChangeError (nothing written, re-run: write-keys.ts does it itself); any other etcd
 * failure is the context's EtcdUnreachableError (exit 2).
 */
import { Range } from 'etcd3';
import { looseEntry, looseTenantEntry } from '../src/config/loose-entry.js';
import { type Change, MANAGED_SECTIONS } from './change-plan.js';
import type { CtlContext } from './ctl-context.js';
import { ConcurrentChangeError, UserError } from './ctl-errors.js';
import type { PrefixRead } from './prefix-read.js';
import { stateInForce } from './state-in-force.js';
import { problemsMessage, validateChanges } from './validate-changes.js';

/**
 * etcd's default `--max-txn-ops`: it refuses a transaction with more operations than that ("too
 * many operations in txn request"). The local stack and compose start etcd with a larger limit;
 * an operator's own etcd may not.
 */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;

/** what etcd says (in a gRPC error's message) when a transaction exceeds its --max-txn-ops */
const TOO_MANY_OPS = 'too many operations in txn request';

interface GuardedTxn {
  compare: {
    key: Buffer;
    range_end: Buffer | undefined;
    target: 'Mod';
    result: 'Less' | 'Equal';
    mod_revision: number;
  }[];
  success: ({ request_delete_range: { key: Buffer } } | { request_put: { key: Buffer; value: Buffer } })[];
  failure: never[];
}

/**
 * What a commit of `changes` is guarded by (managed sections, and single keys): every managed
 * section, unless `narrow` and the changes are tenant entries and their move marks only. Those
 * are guarded by every other section and by the tenant keys written: no other tenant's entry
 * bears on whether they are valid (a tenant names a shard; the placement and shard keys stay
 * guarded), so a tenant created or changed meanwhile by someone else does not refuse the write.
 * `tenants create` picks a least-tenants shard from its read, which such a write may leave a
 * tenant off; two creates of the same id still collide on the key. `config apply` is not narrow:
 * it writes a whole document, which any change in between makes stale.
 */
export function guardFor(changes: readonly Change[], { narrow = false } = {}): readonly string[] {
  const tenantOnly = changes.every((c) => c.key.startsWith('tenants/') || c.key.startsWith('moving/'));
  if (!narrow || !tenantOnly) return MANAGED_SECTIONS;
  return [
    ...MANAGED_SECTIONS.filter((s) => s !== 'tenants/'),
    ...changes.filter((c) => c.key.startsWith('tenants/')).map((c) => c.key),
  ];
}

/**
 * The transaction that writes `changes`, guarded by: no key of `guard` (guardFor: managed
 * sections, and single keys) was modified after `revision`, and every key of `exact` still has
 * the mod revision it had when read. One compare per entry of each (a single key in both: the
 * exact one), one put or delete per change.
 *
 * The first alone cannot see a delete: a key deleted after the read is in no range any more, so
 * nothing of it is compared (an outside check: a tenant removed while `set-status` ran came back,
 * a tenant was written onto a shard removed meanwhile). `exact` holds the keys written and the
 * shards the written values name (exactKeys); a delete of one sets its mod revision to 0, which
 * no compare equals.
 */
export function guardedTxn(
  prefix: string,
  revision: number,
  changes: readonly Change[],
  guard: readonly string[] = MANAGED_SECTIONS,
  exact: ReadonlyMap<string, number> = new Map(),
): GuardedTxn {
  // a single key compared exactly needs no "not modified since" compare as well
  const compare: GuardedTxn['compare'] = guard
    .filter((section) => !exact.has(section))
    .map((section) => ({
      key: Buffer.from(prefix + section, 'utf8'),
      // the range of every key that starts with the section
      range_end: section.endsWith('/') ? Range.prefix(prefix + section).end : undefined,
      target: 'Mod' as const,
      result: 'Less' as const,
      mod_revision: revision + 1,
    }));
  for (const [key, mod] of exact)
    compare.push({
      key: Buffer.from(prefix + key, 'utf8'),
      range_end: undefined,
      target: 'Mod',
      result: 'Equal',
      mod_revision: mod,
    });
  const success = changes.map((c) => {
    const key = Buffer.from(prefix + c.key, 'utf8');
    return c.new === undefined
      ? { request_delete_range: { key } }
      : { request_put: { key, value: Buffer.from(c.new, 'utf8') } };
  });
  return { compare, success, failure: [] };
}

/**
 * The operations etcd counts against its --max-txn-ops: the longest of the compare, success and
 * failure lists of the transaction, not their sum (etcd's checkTxnRequest). For a commit that is
 * its compares: the guarded sections, the keys written and the shards their values name.
 */
export function txnOperationCount(txn: GuardedTxn): number {
  return Math.max(txn.compare.length, txn.success.length, txn.failure.length);
}

/**
 * The UserError (exit 1) for etcd refusing a transaction as too large, which is no unreachable
 * etcd: it answered, and the request can be made smaller. undefined for any other error.
 */
function txnRefusal(error: unknown, changes: number, operations: number): UserError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (!message.includes(TOO_MANY_OPS)) return undefined;
  return new UserError(
    `etcd refused to write the ${changes} change(s) in one transaction of ${operations} operations: "${TOO_MANY_OPS}" (more than its --max-txn-ops, ${ETCD_DEFAULT_MAX_TXN_OPS} unless set); nothing written: apply the file in parts, or raise etcd's --max-txn-ops`,
  );
}

/**
 * Validate, then write all changes in one transaction guarded by: no managed key under the
 * prefix was modified after the revision read (`narrow`: see guardFor). Throws UserError naming
 * every invalid key, and for a transaction etcd refuses as too large (txnRefusal). Answers the
 * revision written (the read's when there is nothing to write).
 */
export async function commitChanges(
  ctx: CtlContext,
  read: PrefixRead,
  changes: Change[],
  { narrow = false } = {},
): Promise<number> {
  const problems = validateChanges(read, changes, (await stateInForce(ctx, read)).entries);
  if (problems.length > 0) throw new UserError(problemsMessage(ctx.prefix, problems));
  if (changes.length === 0) return read.revision;
  const txn = guardedTxn(
    ctx.prefix,
    read.revision,
    changes,
    guardFor(changes, { narrow }),
    exactKeys(read, changes),
  );
  const res = await ctx.call(
    async () => {
      try {
        return await ctx.etcd.kv.txn(txn);
      } catch (error) {
        throw txnRefusal(error, changes.length, txnOperationCount(txn)) ?? error;
      }
    },
    { write: true },
  );
  if (!res.succeeded) {
    throw new ConcurrentChangeError(
      `etcd changed since revision ${read.revision} was read; nothing written, re-run the command`,
    );
  }
  return Number(res.header.revision);
}

/**
 * The keys whose mod revision must not have changed since `read` for `changes` to be written as
 * validated: each key written (edited or deleted meanwhile: the change would undo that), and each
 * shard a written tenant entry or placement names (deleted meanwhile: the value would name an
 * unknown shard); each with its mod revision in `read`. Only keys `read` holds: one it did not
 * hold can only have been created since, which the guard's compares already see (a range, or
 * the key itself), so a bulk load of new tenants takes no compare per tenant.
 */
export function exactKeys(read: Pick<PrefixRead, 'mods'>, changes: readonly Change[]): Map<string, number> {
  const keys = new Map<string, number>();
  const add = (key: string) => {
    const mod = read.mods.get(key);
    if (mod !== undefined && mod > 0) keys.set(key, mod);
  };
  for (const c of changes) {
    add(c.key);
    if (c.new === undefined) continue;
    if (c.key.startsWith('tenants/')) {
      const shard = looseTenantEntry(c.new)?.shard;
      if (shard) add(`shards/${shard}`);
    } else if (c.key === 'placement') {
      const shards = (looseEntry(c.new) as { shards?: unknown } | undefined)?.shards;
      if (Array.isArray(shards)) for (const id of shards) if (typeof id === 'string') add(`shards/${id}`);
    }
  }
  return keys;
}
