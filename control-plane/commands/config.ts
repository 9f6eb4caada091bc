/**
 * `config export [-o file] [--json]` and `config apply -f file [--dry-run] [--prune] [--force]`.
 * Apply validates everything first, prints a diff, and writes in one guarded transaction; one
 * refused because etcd changed since its read is planned again from a new read (applyAttempt). A file
 * with an export revision N (the YAML header `# shardgate config, etcd revision N`, or the
 * `$etcdRevision` field of a JSON export) is also refused where it would change a key that changed
 * in etcd after revision N, or re-create one deleted after it (someone's later edit), unless
 * --force; so is a file whose N is above etcd's revision (not exported from this etcd), and one
 * that would create keys when etcd has compacted revision N away (deletions cannot be checked).
 * A file with no export revision cannot be checked so: it is applied, with one warning line on
 * stderr saying so (none with --force, which asks for no such check). Keys absent from the file
 * are left alone unless --prune (then managed keys not in the file are deleted; `instances/` is
 * never touched). Every problem of the file (unknown sections, empty values, revision checks,
 * invalid values) is named in one line.
 * A dry run warns when the transaction would exceed etcd's default --max-txn-ops (128).
 * Weights that would leave no registered instance above 0 are refused as `lb weight` refuses
 * them (lastDrainProblem), unless --force, and so is a tenant the file adds on a shard that
 * `tenants remove` left its rows on (removedTenantProblems); new servers are asked what `shards add` /
 * `set-master` ask them, each problem a warning (warnShardServers).
 */
import { parseDocument } from 'yaml';
import type { RejectedKey } from '../../src/config/config-state.js';
import { formatHostPort } from '../../src/config/host-port.js';
import { looseEntry, looseTenantEntry } from '../../src/config/loose-entry.js';
import { ID_PATTERN, parseConfigKey, type ShardConfig } from '../../src/config/schema.js';
import { type Change, formatChange, isManagedKey, planChanges } from '../change-plan.js';
import { nonNameKeys, readDocument, toDocument, toYaml } from '../config-document.js';
import type { CtlContext } from '../ctl-context.js';
import { ConcurrentChangeError, UserError } from '../ctl-errors.js';
import { exportableEntries } from '../export-keys.js';
import {
  EXPORT_HEADER,
  exportRevisionProblems,
  REVISION_FIELD,
  splitExportRevision,
} from '../export-revision.js';
import { forgetMoveRecord } from '../forget-move-record.js';
import {
  commitChanges,
  ETCD_DEFAULT_MAX_TXN_OPS,
  exactKeys,
  guardedTxn,
  txnOperationCount,
} from '../guarded-commit.js';
import { readMoveRecord, recordedMoves } from '../move-record.js';
import { passwordEnvWarning } from '../password-env-warning.js';
import { nonPlainNumbers } from '../plain-numbers.js';
import { loadState, type PrefixRead, readPrefix } from '../prefix-read.js';
import { unreachable } from '../reachability.js';
import { readRemovalRecord, updateRemovalRecord } from '../removal-record.js';
import { type StateInForce, stateInForce } from '../state-in-force.js';
import { terminalSafe } from '../terminal-safe.js';
import { readTextFile, writeTextFile } from '../text-file.js';
import { unmanagedKeyProblems } from '../unmanaged-keys.js';
import { problemsMessage, validateChanges } from '../validate-changes.js';
import { retryPause, WRITE_ATTEMPTS } from '../write-keys.js';
import { drainLeavesNoReadyServer, servingInstances } from './lb.js';
import { sameServer, writableMasterCheck } from './shards.js';

export async function exportCommand(
  ctx: CtlContext,
  opts: { output?: string; json?: boolean },
): Promise<void> {
  // an empty -o names no file: refused rather than taken for none (stdout)
  if (opts.output === '') throw new UserError("option '-o, --output <file>' names no file (got '')");
  const read = await readPrefix(ctx);
  const { entries: managed, leftOut } = exportableEntries(read.entries);
  if (leftOut.length > 0) {
    ctx.warn(
      `config export: warning: left out ${leftOut.length} key(s) that are no config keys (the instances reject them as unknown keys; a file cannot hold them): ${leftOut
        .map((k) => `${ctx.prefix}${k}`)
        .join(', ')}`,
    );
  }
  const doc = toDocument(managed);
  const text = opts.json
    ? `${JSON.stringify({ [REVISION_FIELD]: read.revision, ...doc }, null, 2)}\n`
    : `${EXPORT_HEADER}${read.revision}\n${toYaml(doc)}`;
  if (opts.output) {
    writeTextFile(opts.output, text);
    ctx.out(`wrote ${managed.size} key(s) at revision ${read.revision} to ${opts.output}`);
  } else {
    process.stdout.write(terminalSafe(text));
  }
}

/** a file named `*.json` (any case): read as YAML like any other, and also held to JSON's rules */
export const isJsonFile = (file: string) => file.toLowerCase().endsWith('.json');

/**
 * The document of config file `file` holding `text`. Every file is read by the YAML parser (YAML
 * 1.2, of which JSON is a part): a YAML file's problem is "not valid YAML", a .json file's "not
 * valid JSON", with "read as YAML" where the YAML parser found it (a duplicate key, which
 * JSON.parse would take, the last one winning). A .json file must be JSON as well: YAML takes a
 * trailing comma or a comment that JSON does not, a sign of a hand edit gone wrong.
 */
/**
 * The path (`a.b.0`) of the first place where `value` holds itself, or undefined for a tree: YAML
 * makes such a structure of an alias inside the node it names (`a: &a [*a]`), which crashed the
 * command with a stack trace (an outside check). An alias of a node elsewhere is fine.
 */
function circularPath(value: unknown, path: string[] = [], holders = new Set<unknown>()): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  if (holders.has(value)) return path.join('.') || '(the top)';
  holders.add(value);
  const children = value instanceof Map ? [...value] : Object.entries(value);
  for (const [key, child] of children) {
    const found = circularPath(child, [...path, String(key)], holders);
    if (found !== undefined) return found;
  }
  holders.delete(value);
  return undefined;
}

export function parseConfigFile(file: string, text: string): unknown {
  const json = isJsonFile(file);
  // the yaml library's first line ends with ":" before a code frame that is not printed
  const firstLine = (message: string) => (message.split('\n')[0] ?? '').replace(/:\s*$/, '');
  let parsed: unknown;
  try {
    // a warning (a tag it does not resolve, `!!float 61`) is refused like an error: the library
    // printed it raw on stderr and read the value as a string, which was then refused as "written
    // as a string" (an outside check)
    // logLevel 'error': a warning of toJS() (a collection as a key) is not printed raw either
    const document = parseDocument(text, { logLevel: 'error' });
    const problem = document.errors[0] ?? document.warnings[0];
    if (problem) throw problem;
    parsed = document.toJS();
  } catch (error) {
    const what = json ? 'valid JSON read as YAML (of which JSON is a part)' : 'valid YAML';
    throw new UserError(`${file} is not ${what}: ${firstLine((error as Error).message)}`);
  }
  const loop = circularPath(parsed);
  if (loop !== undefined)
    throw new UserError(
      `${file} is not a config tree: an alias at ${loop} refers to a node that holds it (a circular structure)`,
    );
  if (json) {
    try {
      JSON.parse(text);
    } catch (error) {
      throw new UserError(`${file} is not valid JSON: ${(error as Error).message}`);
    }
  }
  return parsed;
}

export async function applyCommand(
  ctx: CtlContext,
  opts: { file: string; dryRun?: boolean; prune?: boolean; force?: boolean; adoptRows?: boolean },
): Promise<void> {
  const text = readTextFile(opts.file);
  const parsed = parseConfigFile(opts.file, text);
  const json = isJsonFile(opts.file);
  const { revision: exportedAt, doc } = splitExportRevision(text, parsed);
  const fromFile = readDocument(doc);
  const { entries: wanted } = fromFile;
  // problems of the file itself, named with every other problem in the one line (none hides another)
  const fileProblems: RejectedKey[] = [];
  // a key YAML reads as a number (`007:` is 7), a boolean or null names another id than the one
  // written: refused, and the keys the parsed document made of it are no keys of the file
  const nonNames = nonNameKeys(text);
  const voided = (key: string) =>
    nonNames.some(
      (n) => key === n.parsedPath || key.startsWith(`${n.parsedPath}/`) || n.parsedPath.startsWith(`${key}/`),
    );
  for (const n of nonNames) fileProblems.push({ key: n.key, reason: n.reason });
  for (const key of [...wanted.keys()]) if (voided(key)) wanted.delete(key);
  const empty = fromFile.empty.filter((k) => !voided(k));
  const quoted = fromFile.quoted.filter((k) => !voided(k));
  const unmanaged = [...wanted.keys(), ...empty].filter((k) => !isManagedKey(k));
  fileProblems.push(...unmanagedKeyProblems(unmanaged));
  for (const key of unmanaged) wanted.delete(key);
  for (const key of empty.filter(isManagedKey)) fileProblems.push({ key, reason: 'empty value' });
  // each key named once: a quoted value the schema rejects too (`"\ufeff61 "`) is named as quoted
  const named = new Set(quoted);
  for (const key of quoted.filter(isManagedKey))
    fileProblems.push({
      key,
      reason: `a number or true/false written as a string (${shownString(wanted.get(key)!)}); write it without quotes`,
    });
  // a number written otherwise than as plain digits (`1e2`, `0x3e`, `10.0`), which `lb weight`
  // refuses too; its key's other checks are not named too (`-0` is also out of range)
  const unplain = nonPlainNumbers(text, { format: json ? 'JSON' : 'YAML' }).filter(
    (n) => isManagedKey(n.key) && !voided(n.key),
  );
  fileProblems.push(...unplain);
  for (const n of unplain) named.add(n.key);
  for (let attempt = 1; ; attempt++) {
    // warnings of this attempt, printed once it is the one that ends the command: a retried
    // attempt's would be printed again, and may differ from the last read's
    const warnings: string[] = [];
    const outcome = await applyAttempt(
      { ...ctx, warn: (line: string) => warnings.push(line) },
      { ...opts, exportedAt, wanted, fileProblems, named },
    ).catch((error: unknown) => {
      // a commit whose outcome is unknown (etcd may have applied it) keeps the warnings about
      // what it may have written (a review: a repointed tenant went unwarned); a refusal has none
      for (const line of warnings) ctx.warn(line);
      throw error;
    });
    if (outcome.kind === 'conflict' && attempt < WRITE_ATTEMPTS) {
      await retryPause(attempt);
      continue;
    }
    for (const line of warnings) ctx.warn(line);
    if (outcome.kind === 'conflict') throw outcome.error;
    for (const line of outcome.lines) ctx.out(line);
    if (outcome.kind === 'applied')
      await recordTenantChanges(ctx, outcome.changes, Boolean(opts.force || opts.adoptRows));
    return;
  }
}

/** what one attempt of `config apply` (one read of etcd) came to */
type ApplyOutcome =
  | { kind: 'applied'; changes: Change[]; lines: string[] }
  | { kind: 'not written'; lines: string[] }
  | { kind: 'conflict'; error: ConcurrentChangeError };

/**
 * One read of etcd, the file planned and judged against it, and its guarded commit. A commit
 * refused because etcd changed since the read is a `conflict`: applyCommand reads again and plans
 * the file anew against the new read, up to WRITE_ATTEMPTS times, as writeKeys does (an outside
 * check's bulk loads in parts were refused while another operator moved tenants). The file is
 * judged again each time, its export revision included, so a retry writes only what a re-run
 * would. Written through `ctx.warn` (held by the caller) and the lines answered; a problem throws.
 * Every managed section guards the commit, tenant entries alone too (not narrow, as guardFor says
 * why): a narrow guard costs a compare per tenant written, so a file of 130 tenants would take 140
 * operations of etcd's --max-txn-ops, not 130; and with --prune a tenant created meanwhile must
 * refuse it, to be pruned by the next attempt.
 */
async function applyAttempt(
  ctx: CtlContext,
  opts: {
    file: string;
    dryRun?: boolean;
    prune?: boolean;
    force?: boolean;
    adoptRows?: boolean;
    exportedAt: number | undefined;
    wanted: ReadonlyMap<string, string>;
    fileProblems: readonly RejectedKey[];
    /** keys whose problem the file's checks named already */
    named: ReadonlySet<string>;
  },
): Promise<ApplyOutcome> {
  const { exportedAt, wanted, named } = opts;
  const read = await readPrefix(ctx);
  const desired = new Map<string, string | undefined>(wanted);
  if (opts.prune) {
    for (const key of read.entries.keys())
      if (isManagedKey(key) && !wanted.has(key)) desired.set(key, undefined);
  }
  const changes = planChanges(read, desired);
  const since =
    exportedAt === undefined || opts.force
      ? { notes: [], problems: [] }
      : await exportRevisionProblems(ctx, read, changes, exportedAt);
  // judged as commitChanges and the instances judge it: over the values in force
  const inForce = await stateInForce(ctx, read);
  const problems = [
    ...opts.fileProblems,
    ...since.problems,
    ...validateChanges(read, changes, inForce.entries).filter((p) => !named.has(p.key)),
  ];
  const drain = opts.force ? undefined : await lastDrainProblem(read, changes, inForce);
  if (drain && 'key' in drain) problems.push(drain);
  if (!opts.force && !opts.adoptRows) problems.push(...(await removedTenantProblems(ctx, changes)));
  if (problems.length > 0 || since.notes.length > 0) {
    throw new UserError(problemsMessage(ctx.prefix, problems, since.notes));
  }
  if (drain && 'warning' in drain) ctx.warn(drain.warning);
  await warnShardServers(ctx, changes, opts.force);
  warnPasswordEnvs(ctx, changes);
  warnTenantsRepointed(ctx, changes);
  // only once nothing can refuse any more: a refused command has its one error line and no other
  const warnUnchecked = () => {
    if (exportedAt !== undefined || opts.force) return;
    ctx.warn(
      `config apply: warning: ${opts.file} names no export revision (no "${EXPORT_HEADER}N" first line, no "${REVISION_FIELD}"), so an edit made in etcd since it was written cannot be detected`,
    );
  };
  // keys the instances reject now and this apply leaves as they are: "no changes" must not read
  // as "all is well" (an export copies a rejected value as it is). As the instances judge them,
  // over the values in force: a tenant on a deleted shard they keep for it is no rejected key
  const changed = new Set(changes.map((c) => c.key));
  const stillRejected = inForce.state.rejected.filter(
    (r) => !changed.has(r.key) && isManagedKey(r.key) && wanted.has(r.key),
  );
  const warnRejected = () => {
    if (stillRejected.length === 0) return;
    ctx.warn(
      `config apply: warning: ${stillRejected.length} key(s) of ${opts.file} stay rejected by the instances, unchanged: ${stillRejected
        .map((r) => `${ctx.prefix}${r.key} (${r.reason})`)
        .join('; ')}`,
    );
  };
  if (changes.length === 0) {
    warnUnchecked();
    warnRejected();
    return { kind: 'not written', lines: ['no changes'] };
  }
  if (opts.dryRun) {
    warnUnchecked();
    warnRejected();
    const operations = txnOperationCount(
      guardedTxn(ctx.prefix, read.revision, changes, undefined, exactKeys(read, changes)),
    );
    if (operations > ETCD_DEFAULT_MAX_TXN_OPS) {
      ctx.warn(
        `config apply: warning: the ${changes.length} change(s) make one etcd transaction of ${operations} operations: an etcd with the default --max-txn-ops (${ETCD_DEFAULT_MAX_TXN_OPS}) refuses it; apply the file in parts, or raise etcd's --max-txn-ops`,
      );
    }
    return {
      kind: 'not written',
      lines: [...changes.map(formatChange), `dry run: ${changes.length} change(s) not applied`],
    };
  }
  let revision: number;
  try {
    revision = await commitChanges(ctx, read, changes);
  } catch (error) {
    if (error instanceof ConcurrentChangeError) return { kind: 'conflict', error };
    throw error;
  }
  warnUnchecked();
  warnRejected();
  return {
    kind: 'applied',
    changes,
    lines: [...changes.map(formatChange), `applied ${changes.length} change(s) at revision ${revision}`],
  };
}

/**
 * A string of a file that reads as a number or a boolean, for a message: quoted, each character
 * but printable ASCII as `\uXXXX` (its blanks: a newline would break the one-line message, a BOM
 * or a no-break space would not show).
 */
function shownString(value: string): string {
  const escaped = value.replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return `"${escaped}"`;
}

/**
 * The checks `lb weight` makes (refuseLastDrain, drainLeavesNoReadyServer), for a whole file:
 * changes that leave no registered instance with a weight above 0, while one had it, or only ones
 * that do not answer ready, are refused unless --force. Before, a file with every weight at 0 was
 * applied (an outside check), and HAProxy answered every request 503. Judged over the values in
 * force, as the instances and lb sync hold them.
 */
async function lastDrainProblem(
  read: PrefixRead,
  changes: readonly Change[],
  inForce: StateInForce,
): Promise<RejectedKey | { warning: string } | undefined> {
  const before = servingInstances(inForce.state.snapshot);
  if (before.length === 0 || !changes.some((c) => c.key.startsWith('lb/weights/'))) return undefined;
  const entries = new Map(inForce.entries);
  for (const c of changes) {
    if (c.new === undefined) entries.delete(c.key);
    else entries.set(c.key, c.new);
  }
  const after = loadState({ ...read, entries }).snapshot;
  const staying = servingInstances(after);
  if (staying.length === 0)
    return {
      key: 'lb/weights/',
      reason: `the file leaves no registered instance (${before.join(', ')}) with a weight above 0: HAProxy would answer every request 503 (--force applies it anyway)`,
    };
  const drain = await drainLeavesNoReadyServer(
    after,
    before.filter((id) => !staying.includes(id)),
  );
  if (!drain) return undefined;
  return drain.answered
    ? { key: 'lb/weights/', reason: `${drain.problem} (--force applies it anyway)` }
    : { warning: `config apply: warning: ${drain.problem}` };
}

/**
 * What `tenants create` refuses without counting rows (removal-record.ts), for a whole file: a
 * tenant entry the file adds, or points at another shard, whose id `tenants remove` recorded as
 * removed from that shard with its rows left there would get them back, members, librarian and
 * their tokens included. Refused unless --adopt-rows (or --force); the file path counts no rows.
 */
async function removedTenantProblems(ctx: CtlContext, changes: readonly Change[]): Promise<RejectedKey[]> {
  const problems: RejectedKey[] = [];
  for (const c of changes) {
    if (!c.key.startsWith('tenants/') || c.new === undefined) continue;
    const id = c.key.slice('tenants/'.length);
    const shard = looseTenantEntry(c.new)?.shard;
    if (!ID_PATTERN.test(id) || typeof shard !== 'string' || !ID_PATTERN.test(shard)) continue;
    if (c.old !== undefined && looseTenantEntry(c.old)?.shard === shard) continue;
    const removed = await readRemovalRecord(ctx, id, shard);
    if (!removed) continue;
    problems.push({
      key: c.key,
      reason: `tenant id ${id} was removed from shard ${shard}${removed.removedAt ? ` at ${removed.removedAt}` : ''} with its rows left there: a tenant of that id there gets them back, members, librarian and their tokens included (--adopt-rows brings that tenant back)`,
    });
  }
  return problems;
}

/**
 * The removal records of the tenant entries an applied file changed (removal-record.ts): a
 * deleted entry (`--prune`, a file that drops it) or one pointed at another shard leaves its rows
 * on its shard, and this path counts no rows, so it is recorded; a tenant a file brought back on a recorded shard with
 * `--adopt-rows` or `--force` (removedTenantProblems let it through) takes those rows again, so
 * that record goes.
 */
async function recordTenantChanges(ctx: CtlContext, changes: readonly Change[], adopted: boolean) {
  const removed: { id: string; shard: string }[] = [];
  for (const c of changes) {
    if (!c.key.startsWith('tenants/')) continue;
    const id = c.key.slice('tenants/'.length);
    if (!ID_PATTERN.test(id)) continue;
    const shardOf = (value: string | undefined) => {
      const shard = value === undefined ? undefined : looseTenantEntry(value)?.shard;
      return typeof shard === 'string' && ID_PATTERN.test(shard) ? shard : undefined;
    };
    const [before, after] = [shardOf(c.old), shardOf(c.new)];
    // deleted, or pointed at another shard: the rows stay where they were
    if (before && before !== after) {
      await updateRemovalRecord(ctx, id, before, 'unchecked');
      if (c.new === undefined) removed.push({ id, shard: before });
    }
    // brought back on a shard recorded (removedTenantProblems let it through): its rows are its own
    if (after && after !== before && adopted) await updateRemovalRecord(ctx, id, after, undefined);
  }
  await forgetLeftMoves(ctx, removed);
  const rule =
    '`tenants create` of the id there refuses it while they cannot be counted, unless --adopt-rows';
  if (removed.length <= REMOVED_LINES_MAX) {
    for (const { id, shard } of removed)
      ctx.out(`tenant ${id} removed from the directory: its rows stay on shard ${shard}, and ${rule}`);
    return;
  }
  // one line for a bulk removal: an outside check's --prune of 10,000 tenants printed 10,000
  const listed = removed
    .slice(0, REMOVED_LINES_MAX)
    .map((r) => r.id)
    .join(', ');
  ctx.out(
    `${removed.length} tenants removed from the directory (${listed}, …): the rows of each stay on its shard, and ${rule}; \`tenants delete-rows <id> --shard <shard> --yes\` deletes them`,
  );
}

/**
 * The move records of the tenants the file deleted go as `tenants remove` makes them go
 * (forgetMoveRecord): before, a dead move's record outlived the entry, and no command but etcdctl
 * could clear it (a review). A running move's too, as `remove` does: its writes are fenced by its
 * record, and a readonly tenant's move past its switch reads the entry no more, so kept, the
 * record let it void the target's removal record (a second review). One read of the records for
 * the whole file.
 */
async function forgetLeftMoves(ctx: CtlContext, removed: readonly { id: string; shard: string }[]) {
  if (removed.length === 0) return;
  const recorded = new Map((await recordedMoves(ctx)).map((m) => [m.tenant, m.state]));
  const lines: string[] = [];
  for (const { id, shard } of removed) {
    const state = recorded.get(id);
    if (!state) continue;
    const record = await readMoveRecord(ctx, id).catch(() => undefined);
    const line = record && (await forgetMoveRecord(ctx, id, record, shard, state === 'running'));
    if (line) lines.push(`tenant ${id}: ${line}`);
  }
  if (lines.length <= REMOVED_LINES_MAX) {
    for (const line of lines) ctx.out(line);
    return;
  }
  ctx.out(
    `${lines.length} tenants removed had the record of a move, deleted: rows it copied may be on both of its shards, each recorded`,
  );
}

/** up to this many tenants removed by a file get a line each; more, one line for all */
const REMOVED_LINES_MAX = 10;

/**
 * A shard the file writes with a `passwordEnv` this command's environment lacks, new or changed
 * (one unchanged the instances judged already): a warning line each, before the write and in a
 * dry run (password-env-warning.ts says why not a refusal).
 */
function warnPasswordEnvs(ctx: CtlContext, changes: readonly Change[]): void {
  for (const c of changes) {
    if (!c.key.startsWith('shards/') || c.new === undefined) continue;
    const passwordEnv = looseEntry(c.new)?.passwordEnv;
    if (typeof passwordEnv !== 'string') continue;
    if (c.old !== undefined && looseEntry(c.old)?.passwordEnv === passwordEnv) continue;
    const warning = passwordEnvWarning('config apply', c.key.slice('shards/'.length), passwordEnv);
    if (warning) ctx.warn(warning);
  }
}

/**
 * A tenant entry the file points at another shard moves none of its rows: they stay on the old
 * shard, and on the new one the tenant answers as a new, empty library (or with what an earlier
 * tenant of the id left there). A warning per tenant, before the write and in a dry run: an outside
 * check repointed a tenant of 3,302 members with only the diff line printed. `tenants move`
 * copies the rows.
 */
function warnTenantsRepointed(ctx: CtlContext, changes: readonly Change[]): void {
  for (const c of changes) {
    if (!c.key.startsWith('tenants/') || c.old === undefined || c.new === undefined) continue;
    const [from, to] = [looseTenantEntry(c.old)?.shard, looseTenantEntry(c.new)?.shard];
    if (typeof from !== 'string' || typeof to !== 'string' || from === to) continue;
    const id = c.key.slice('tenants/'.length);
    ctx.warn(
      `config apply: warning: tenant ${id} is pointed from shard ${from} to shard ${to}: its rows stay on ${from}, and on ${to} it answers as a new, empty library; \`tenants move ${id} --to ${to}\` copies them`,
    );
  }
}

/**
 * The servers a file names anew are asked what `shards add` and `set-master` ask them
 * (commands/shards.ts): every new address takes a TCP connection, and a shard's new master can
 * take its writes (not read-only, not replicating). Each problem is a warning line before the
 * write, in a dry run too (it only reads); the file is applied all the same: a file is the bulk
 * path (a seed written before its servers are up, a copy of another site's config) and needs etcd
 * only. Before, a file pointed a shard at a read-only replica and added one at a dead address, and
 * a dry run listed both without a word (an outside check). --force asks for no such check, as for
 * the export revision (compose's init applies its seed with --force).
 */
async function warnShardServers(
  ctx: CtlContext,
  changes: readonly Change[],
  force: boolean | undefined,
): Promise<void> {
  if (force) return;
  for (const c of changes) {
    if (!c.key.startsWith('shards/') || c.new === undefined) continue;
    const id = c.key.slice('shards/'.length);
    const next = shardValue(c.key, c.new);
    if (!next) continue; // validateChanges named it
    const old = c.old === undefined ? undefined : shardValue(c.key, c.old);
    const newMaster = !old || !sameServer(old.master, next.master);
    const endpoints = [
      ...(newMaster ? [{ what: `shard ${id}'s master`, ...next.master }] : []),
      ...next.replicas
        .filter((r) => !old?.replicas.some((o) => sameServer(o, r)))
        .map((r) => ({ what: `shard ${id}'s replica`, host: r.host, port: r.port })),
    ];
    const failed = await unreachable(endpoints);
    for (const { endpoint: e, error } of failed)
      ctx.warn(`config apply: warning: ${e.what} ${formatHostPort(e.host, e.port)} unreachable (${error})`);
    // a shard's master changed: set-master's check (a new shard's master is only reached, as add's)
    if (!old || !newMaster || failed.some((f) => f.endpoint.what.endsWith('master'))) continue;
    const check = await writableMasterCheck(ctx, id, next);
    const master = formatHostPort(next.master.host, next.master.port);
    for (const line of [...check.problems, ...check.warnings])
      ctx.warn(`config apply: warning: shard ${id}'s new master ${master}: ${line}`);
  }
}

function shardValue(key: string, value: string): ShardConfig | undefined {
  const r = parseConfigKey(key, value);
  return r.ok && r.parsed.type === 'shard' ? r.parsed.value : undefined;
}
