/**
 * Reading and writing the etcd prefix for the CLI. Every write follows one protocol:
 * read the prefix at revision R → build the desired changes → validate the resulting whole
 * config with the API's own ConfigState (the same zod schema and reference checks the instances
 * apply) → commit all changes in ONE etcd transaction guarded by "no config key changed since R".
 * If the guard fails, nothing is written and the operator is told to re-run.
 */
import { ConfigState, type RejectedKey } from '../src/config/config-state.js';
import { type DbHostPolicy, parseDbHosts } from '../src/config/db-hosts.js';
import { applyRestorePlan, etcdVersionReader, planHistoryRestore } from '../src/config/history-restore.js';
import { parseConfigKey, scalarSchemas } from '../src/config/schema.js';
import type { CtlContext } from './ctl-context.js';
import { ConcurrentChangeError, UserError } from './ctl-errors.js';

export interface PrefixRead {
  revision: number;
  /** keys relative to the prefix → raw values */
  entries: Map<string, string>;
  /** keys relative to the prefix → etcd mod_revision */
  mods: Map<string, number>;
}

export interface Change {
  key: string;
  old: string | undefined;
  /** undefined = delete */
  new: string | undefined;
}

/**
 * Sections an operator manages; `instances/` is written by the instances themselves. The
 * sections of the plain settings (`cache/`, `replication/`, `mail/`, …) come from the schema,
 * so a new setting is managed without a second list to keep.
 */
export const MANAGED_SECTIONS = [
  'shards/',
  'tenants/',
  'placement',
  'breakers/',
  ...new Set(Object.keys(scalarSchemas).map((key) => `${key.split('/')[0]}/`)),
  'lb/',
];

export function isManagedKey(key: string): boolean {
  return MANAGED_SECTIONS.some((s) => (s.endsWith('/') ? key.startsWith(s) : key === s));
}

export function dbHostsOfEnv(): DbHostPolicy | undefined {
  const text = process.env.SHARDGATE_DB_HOSTS;
  if (text === undefined) return undefined;
  try {
    return parseDbHosts(text);
  } catch (error) {
    throw new UserError(`invalid environment variable SHARDGATE_DB_HOSTS: ${(error as Error).message}`);
  }
}

export async function readPrefix(ctx: CtlContext): Promise<PrefixRead> {
  const res = await ctx.call(() => ctx.etcd.getAll().prefix(ctx.prefix).exec());
  const entries = new Map<string, string>();
  const mods = new Map<string, number>();
  for (const kv of res.kvs) {
    const key = kv.key.toString('utf8').slice(ctx.prefix.length);
    entries.set(key, kv.value.toString('utf8'));
    mods.set(key, Number(kv.mod_revision));
  }
  return { revision: Number(res.header.revision), entries, mods };
}

/**
 * The validated view of a read, computed exactly as the API instances compute it, with this
 * process's SHARDGATE_DB_HOSTS (the instances' own list is what they enforce; set the same here).
 */
export function loadState(read: PrefixRead): ConfigState {
  const state = new ConfigState({ dbHosts: dbHostsOfEnv() });
  state.load([...read.entries].map(([k, v]): [string, string, number] => [k, v, read.mods.get(k) ?? 0]));
  return state;
}

/**
 * Whether two values of `key` say the same: the same canonical text, or both valid with the same
 * parsed value (defaults filled in: a replica without `"weight"` is one of weight 1), so a file
 * that leaves out a default or orders fields otherwise rewrites no key.
 */
function sameMeaning(key: string, a: string, b: string): boolean {
  if (canonical(a) === canonical(b)) return true;
  const pa = parseConfigKey(key, a);
  const pb = parseConfigKey(key, b);
  return pa.ok && pb.ok && JSON.stringify(pa.parsed) === JSON.stringify(pb.parsed);
}

/** Canonical text of a value so `{"a":1, "b":2}` and `{"b":2,"a":1}` compare equal. */
export function canonical(value: string): string {
  const trimmed = value.trim();
  if (!trimmed.startsWith('{')) return trimmed;
  try {
    return JSON.stringify(sortKeys(JSON.parse(trimmed)));
  } catch {
    return trimmed;
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Changes needed to reach `desired` (undefined value = delete); semantically equal values are no change. */
export function planChanges(current: PrefixRead, desired: Map<string, string | undefined>): Change[] {
  const changes: Change[] = [];
  for (const [key, value] of desired) {
    const old = current.entries.get(key);
    if (value === undefined ? old === undefined : old !== undefined && sameMeaning(key, old, value)) continue;
    changes.push({ key, old, new: value });
  }
  return changes.sort((a, b) => a.key.localeCompare(b.key));
}

/** How many tenants a refused shard removal names; the count is always exact. */
const HOLDERS_NAMED = 5;

/**
 * Validate the config that the changes would produce. Returns the rejections that concern a
 * changed key, or that the change newly causes (e.g. deleting a shard that still holds tenants).
 * A refused shard removal is reported once, on the shard's key: the "unknown shard" rejections of
 * the (unchanged) tenants still on it only restate that cause and are left out.
 */
export function validateChanges(
  current: PrefixRead,
  changes: Change[],
  /** the values in force (stateInForce's entries): judged from them, as the instances judge it */
  inForce?: ReadonlyMap<string, string>,
): RejectedKey[] {
  const dbHosts = dbHostsOfEnv();
  // loaded over what the instances hold, the state keeps what they keep (a shard deleted while
  // tenants are on it), so a write of such a tenant is judged as they judge it
  const stateOf = (entries: ReadonlyMap<string, string>) => {
    const s = new ConfigState({ dbHosts });
    if (inForce)
      s.load([...inForce].map(([k, v]): [string, string, number] => [k, v, current.mods.get(k) ?? 0]));
    s.load([...entries].map(([k, v]): [string, string, number] => [k, v, current.mods.get(k) ?? 0]));
    return s;
  };
  const before = stateOf(current.entries);
  const beforeKeys = new Set(before.rejected.map((r) => `${r.key}\0${r.reason}`));
  const next = new Map(current.entries);
  for (const c of changes) {
    if (c.new === undefined) next.delete(c.key);
    else next.set(c.key, c.new);
  }
  // an invalid new value is reported as such (a last good value in force is no excuse for it)
  const after = stateOf(next);
  const changed = new Set(changes.map((c) => c.key));
  const shardDeletes = changes.filter((c) => c.new === undefined && c.key.startsWith('shards/'));
  const problems: RejectedKey[] = [];
  const restated = new Set<string>();
  // The cause first: a shard removed while tenants live on it.
  for (const c of shardDeletes) {
    const id = c.key.slice('shards/'.length);
    // the tenants on it once the same request is applied: one moved off it or deleted is not.
    // Read from the raw entries, not the validated ones: while the shard's own value is invalid,
    // its tenants are rejected too ("unknown shard"), yet the instances keep routing them to it
    const holders = [...current.entries]
      .filter(([key, raw]) => key.startsWith('tenants/') && namesShard(raw, id) && stillOn(next.get(key), id))
      .map(([key]) => key.slice('tenants/'.length));
    if (holders.length > 0) {
      const named = holders.slice(0, HOLDERS_NAMED).join(', ');
      const others = holders.length - HOLDERS_NAMED;
      problems.push({
        key: c.key,
        reason: `shard still holds ${holders.length} tenant(s): ${named}${others > 0 ? ` and ${others} other tenant(s)` : ''}`,
      });
      for (const tid of holders) if (!changed.has(`tenants/${tid}`)) restated.add(`tenants/${tid}`);
    }
  }
  problems.push(
    ...after.rejected
      .filter((r) => !restated.has(r.key) && (changed.has(r.key) || !beforeKeys.has(`${r.key}\0${r.reason}`)))
      // the write is refused whole: no value of it is "kept", the reason alone is the problem
      .map((r) => ({ ...r, reason: r.reason.replace(/; keeping last good value$/, '') })),
  );
  return problems;
}

/** The header `config export` writes above the YAML, naming the etcd revision it read. */
export const EXPORT_HEADER = '# shardgate config, etcd revision ';

/**
 * The top-level field of `config export --json` naming the etcd revision it read (JSON has no
 * comments). Not a config key: `config apply` takes it out of the document before reading keys.
 */
export const REVISION_FIELD = '$etcdRevision';

/** The revision in an exported file's header; undefined for a file without one. */
export function exportedRevision(text: string): number | undefined {
  // the first line that says anything: a BOM or blank lines an editor added do not hide the header
  const first =
    text
      .replace(/^\uFEFF/, '')
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l !== '') ?? '';
  if (!first.startsWith(EXPORT_HEADER.trim())) return undefined;
  const raw = first.slice(EXPORT_HEADER.trim().length).trim();
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : Number.NaN;
  // a header that names no revision claims a check it cannot have: refused, not taken as none
  if (!(n > 0)) {
    throw new UserError(
      `the file's header "${first.slice(0, 80)}" names no etcd revision ("${raw.slice(0, 30)}" is not one): export the file again, or remove the header line to apply it unchecked`,
    );
  }
  return n;
}

/**
 * The export revision of a file (`text`, parsed as `doc`): its YAML header's, or its
 * REVISION_FIELD, which is removed from the returned document; the lower of both if it has both.
 * undefined for a file with neither (hand-written, or its first line removed). A REVISION_FIELD
 * that is not a revision is a UserError: the file claims a check it cannot have.
 */
export function splitExportRevision(text: string, doc: unknown): { revision?: number; doc: unknown } {
  const header = exportedRevision(text);
  if (!doc || typeof doc !== 'object' || Array.isArray(doc) || !(REVISION_FIELD in doc)) {
    return { revision: header, doc };
  }
  const { [REVISION_FIELD]: field, ...rest } = doc as Record<string, unknown>;
  if (typeof field !== 'number' || !Number.isSafeInteger(field) || field < 1) {
    throw new UserError(
      `${REVISION_FIELD} must be the etcd revision the file was exported at (a whole number ≥ 1), got ${JSON.stringify(field)}`,
    );
  }
  return { revision: header === undefined ? field : Math.min(header, field), doc: rest };
}

/**
 * The changes that would overwrite (or delete) a key someone changed in etcd after the file was
 * exported at `exportedAt`: applying the file would silently undo that edit. A key created since
 * counts too.
 */
export function changedSinceExport(read: PrefixRead, changes: Change[], exportedAt: number): RejectedKey[] {
  return changes.flatMap((c) => {
    const mod = read.mods.get(c.key);
    if (mod === undefined || mod <= exportedAt) return [];
    return [
      {
        key: c.key,
        reason: `changed in etcd at revision ${mod}, after the file was exported at revision ${exportedAt} (export again, or --force)`,
      },
    ];
  });
}

/** what etcd says (in a gRPC error's message) when a read names a revision it compacted away */
const COMPACTED = 'required revision has been compacted';

/** How many keys a message that could list hundreds names before it counts the others. */
const KEYS_NAMED = 5;

function namedKeys(prefix: string, keys: readonly string[]): string {
  const named = keys.slice(0, KEYS_NAMED).map((k) => `${prefix}${k}`);
  const others = keys.length - named.length;
  return `${named.join(', ')}${others > 0 ? ` and ${others} other key(s)` : ''}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The changes that would re-create a key someone deleted in etcd after the file was exported at
 * `exportedAt`: one the change creates (absent now) that existed at that revision
 * (`keysAtExport`). Applying the file would silently undo that deletion, as it would an edit.
 */
export function deletedSinceExport(
  changes: readonly Change[],
  keysAtExport: ReadonlySet<string>,
  exportedAt: number,
): RejectedKey[] {
  return changes
    .filter((c) => c.old === undefined && c.new !== undefined && keysAtExport.has(c.key))
    .map((c) => ({
      key: c.key,
      reason: `deleted in etcd after the file was exported at revision ${exportedAt} (export again, or --force)`,
    }));
}

/**
 * The keys under the prefix at revision `at` (relative to the prefix), or 'compacted' when etcd
 * has compacted its history past that revision. Other failures are the context's (exit 2).
 */
export async function keysAtRevision(ctx: CtlContext, at: number): Promise<Set<string> | 'compacted'> {
  return ctx.call(async () => {
    try {
      const keys = await ctx.etcd.getAll().prefix(ctx.prefix).revision(at).keys();
      return new Set(keys.map((k) => k.slice(ctx.prefix.length)));
    } catch (error) {
      if (messageOf(error).includes(COMPACTED)) return 'compacted';
      throw error;
    }
  });
}

/**
 * Everything that refuses applying `changes` from a file exported at `exportedAt` to etcd as
 * `read` found it: `notes` about the file as a whole, `problems` by key.
 * - A revision above etcd's own: the file was not exported from this etcd (or the number was
 *   edited), so no check against it means anything.
 * - A key changed (or created) in etcd after the export (changedSinceExport).
 * - A key the change creates that existed at the export revision: deleted since
 *   (deletedSinceExport). That takes a read at the export revision; if etcd compacted its history
 *   past it, the deletions cannot be checked, which refuses the file as well (when it creates a key).
 */
export async function exportRevisionProblems(
  ctx: CtlContext,
  read: PrefixRead,
  changes: readonly Change[],
  exportedAt: number,
): Promise<{ notes: string[]; problems: RejectedKey[] }> {
  if (exportedAt > read.revision) {
    return {
      notes: [
        `the file says revision ${exportedAt} but etcd is at ${read.revision}: it was not exported from this etcd (export again, or --force)`,
      ],
      problems: [],
    };
  }
  const problems = changedSinceExport(read, [...changes], exportedAt);
  const creates = changes.filter((c) => c.old === undefined && c.new !== undefined);
  if (creates.length === 0) return { notes: [], problems };
  const keys = await keysAtRevision(ctx, exportedAt);
  if (keys === 'compacted') {
    return {
      notes: [
        `cannot check whether the ${creates.length} key(s) the file would create (${namedKeys(
          ctx.prefix,
          creates.map((c) => c.key),
        )}) were deleted in etcd after it was exported at revision ${exportedAt}: etcd has compacted its history past that revision (export again, or --force)`,
      ],
      problems,
    };
  }
  return { notes: [], problems: [...problems, ...deletedSinceExport(changes, keys, exportedAt)] };
}

/**
 * Whether a tenant entry's raw value (undefined: deleted) still names `shardId`. A value that is
 * not JSON counts as still there: its own rejection names it, and the shard is not freed by it.
 */
/** whether a tenant's raw value names the shard (false when it is not JSON) */
function namesShard(raw: string, shardId: string): boolean {
  try {
    return (JSON.parse(raw) as { shard?: unknown }).shard === shardId;
  } catch {
    return false;
  }
}

function stillOn(raw: string | undefined, shardId: string): boolean {
  if (raw === undefined) return false;
  try {
    return (JSON.parse(raw) as { shard?: unknown }).shard === shardId;
  } catch {
    return true;
  }
}

/**
 * The one-line message of a refused change: the `notes` about the request as a whole first, then
 * every problem as `invalid <prefix><key>: <reason>`, joined with "; ", then "; nothing written".
 * Nothing is summarised as a bare count, so each number in the line counts what it says it counts.
 */
export function problemsMessage(
  prefix: string,
  problems: readonly RejectedKey[],
  notes: readonly string[] = [],
): string {
  const each = [...notes, ...problems.map((p) => `invalid ${prefix}${p.key}: ${p.reason}`)];
  return `${each.join('; ')}; nothing written`;
}

export function formatChange(c: Change): string {
  if (c.old === undefined) return `+ ${c.key} = ${c.new}`;
  if (c.new === undefined) return `- ${c.key} (was ${c.old})`;
  return `~ ${c.key}: ${c.old} -> ${c.new}`;
}

function rangeEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix, 'utf8');
  const end = Buffer.from(b);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

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
    result: 'Less';
    mod_revision: number;
  }[];
  success: ({ request_delete_range: { key: Buffer } } | { request_put: { key: Buffer; value: Buffer } })[];
  failure: never[];
}

/**
 * The transaction that writes `changes`, guarded by: no managed key under the prefix was modified
 * after `revision` (one compare per managed section, one put or delete per change).
 */
export function guardedTxn(prefix: string, revision: number, changes: readonly Change[]): GuardedTxn {
  const compare = MANAGED_SECTIONS.map((section) => ({
    key: Buffer.from(prefix + section, 'utf8'),
    range_end: section.endsWith('/') ? rangeEnd(prefix + section) : undefined,
    target: 'Mod' as const,
    result: 'Less' as const,
    mod_revision: revision + 1,
  }));
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
 * the number of changes, or the number of managed sections when there are fewer changes.
 */
export function txnOperationCount(txn: GuardedTxn): number {
  return Math.max(txn.compare.length, txn.success.length, txn.failure.length);
}

/**
 * The UserError (exit 1) for etcd refusing a transaction as too large, which is no unreachable
 * etcd: it answered, and the request can be made smaller. undefined for any other error.
 */
export function txnRefusal(error: unknown, changes: number, operations: number): UserError | undefined {
  if (!messageOf(error).includes(TOO_MANY_OPS)) return undefined;
  return new UserError(
    `etcd refused to write the ${changes} change(s) in one transaction of ${operations} operations: "${TOO_MANY_OPS}" (more than its --max-txn-ops, ${ETCD_DEFAULT_MAX_TXN_OPS} unless set); nothing written: apply the file in parts, or raise etcd's --max-txn-ops`,
  );
}

/**
 * Validate, then write all changes in one transaction guarded by: no managed key under the
 * prefix was modified after the revision read. Throws UserError naming every invalid key, and
 * for a transaction etcd refuses as too large (txnRefusal).
 */
export async function commitChanges(ctx: CtlContext, read: PrefixRead, changes: Change[]): Promise<number> {
  const problems = validateChanges(read, changes, (await stateInForce(ctx, read)).entries);
  if (problems.length > 0) throw new UserError(problemsMessage(ctx.prefix, problems));
  if (changes.length === 0) return read.revision;
  const txn = guardedTxn(ctx.prefix, read.revision, changes);
  const res = await ctx.call(async () => {
    try {
      return await ctx.etcd.kv.txn(txn);
    } catch (error) {
      throw txnRefusal(error, changes.length, txnOperationCount(txn)) ?? error;
    }
  });
  if (!res.succeeded) {
    throw new ConcurrentChangeError(
      `etcd changed since revision ${read.revision} was read; nothing written, re-run the command`,
    );
  }
  return Number(res.header.revision);
}

/**
 * `stateInForce(ctx, read)`: the config the API instances enforce, as far as etcd can tell. Keys
 * etcd holds but the schema rejects are not simply absent here: their last good values come back
 * from etcd's history exactly as a starting instance restores them (src/config/history-restore.ts),
 * and running instances, which saw every change, keep the same ones. So `breakers get` and
 * `status` show 9 for a threshold whose key went from 9 to "abc", as the instances enforce,
 * not the default. Without a rejected key this is `loadState(read)` and reads nothing more.
 */
export interface StateInForce {
  state: ConfigState;
  /** every key → the value in force: a restored key's last good value in place of its current one */
  entries: Map<string, string>;
  /** restored key → the revision of the value in force */
  restored: Map<string, number>;
}

export async function stateInForce(ctx: CtlContext, read: PrefixRead): Promise<StateInForce> {
  const state = loadState(read);
  const plain = { state, entries: read.entries, restored: new Map<string, number>() };
  if (state.rejected.length === 0) return plain;
  const reader = etcdVersionReader(ctx.etcd, ctx.prefix);
  const plan = await planHistoryRestore(
    [...read.entries].map(([k, v]): [string, string, number] => [k, v, read.mods.get(k) ?? 0]),
    (key, revision) => ctx.call(() => reader(key, revision)),
    { dbHosts: dbHostsOfEnv() },
    read.revision,
  );
  if (!plan) return plain;
  applyRestorePlan(state, plan);
  return { state, entries: new Map(plan.base.map(([k, v]) => [k, v])), restored: plan.restored };
}
