/**
 * `shards list|add|remove|set-master|add-replica|remove-replica`. Every change is validated by the
 * API's schema; removing a shard that still holds tenants is refused. An address that `add`,
 * `set-master` or `add-replica` writes must take a TCP connection first (reachability.ts), unless
 * --force: then the command warns on stderr and writes it anyway.
 *
 * A shard's replicas are distinct servers and none is its master: `add` refuses a --replica given
 * twice or equal to --master, `add-replica` one the shard has or its master, each before anything
 * is probed. `set-master` may name one of the shard's replicas: that is how a replica is promoted
 * after its master died, and it leaves the replicas in the same write; the server must also say
 * it can take the shard's writes (writable-master.ts), unless --force. Hosts compare
 * case-insensitively, as DNS names do; no name is resolved.
 *
 * A replica must replicate from its shard's master: its applied position read first must be
 * contained in the master's read after it (replica-follows.ts). `add-replica` refuses one that is
 * not, unless --force; `set-master` to a new server warns of each replica that stays and is not.
 */

import type { Connection } from 'mysql2/promise';
import type { ConfigState } from '../../src/config/config-state.js';
import { formatHostPort, parseHostPort as parseAddress } from '../../src/config/host-port.js';
import { looseEntry } from '../../src/config/loose-entry.js';
import {
  hostPortSchema,
  ID_PATTERN,
  parseConfigKey,
  replicaSchema,
  type ShardConfig,
} from '../../src/config/schema.js';
import { migrationCount } from '../../src/db/migrations-folder.js';
import { shardPassword } from '../../src/db/shard-password.js';
import { alignColumns } from '../columns.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { instanceRejections, type Rejected } from '../instance-rejections.js';
import { passwordEnvWarning } from '../password-env-warning.js';
import { loadState, type PrefixRead, readPrefix } from '../prefix-read.js';
import { type Endpoint, unreachable } from '../reachability.js';
import { sameDatabase } from '../same-database.js';
import { schemaLine, schemaState } from '../schema-state.js';
import { shardLeftovers } from '../shard-leftovers.js';
import { stateInForce } from '../state-in-force.js';
import {
  connectShardServer,
  type FollowCheck,
  followPositions,
  notFollowingReason,
  replicaFollows,
} from '../tenant-rows.js';
import { terminalSafe } from '../terminal-safe.js';
import { problemsMessage } from '../validate-changes.js';
import { wholeNumber } from '../whole-number.js';
import { checkWritableMaster, type MasterCheck } from '../writable-master.js';
import { writeKeys } from '../write-keys.js';

/** the schema's bounds of a replica weight */
const weightSchema = replicaSchema.shape.weight.unwrap();
const WEIGHT_MIN = weightSchema.minValue ?? 0;
const WEIGHT_MAX = weightSchema.maxValue ?? Number.MAX_SAFE_INTEGER;
const WEIGHTS = `a whole number ${WEIGHT_MIN}–${WEIGHT_MAX}`;

type HostPort = { host: string; port: number };
export const sameServer = (a: HostPort, b: HostPort) =>
  a.host.toLowerCase() === b.host.toLowerCase() && a.port === b.port;

export function parseHostPort(text: string, what: string): HostPort {
  const hp = parseAddress(text);
  if (!hp)
    throw new UserError(
      `invalid ${what} "${text}": expected host:port (an IPv6 address in brackets: [::1]:3306)`,
    );
  return hp;
}

function shardOf(read: PrefixRead, id: string): ShardConfig {
  const raw = read.entries.get(`shards/${id}`);
  if (!raw)
    throw new UserError(
      // as unknownTenant says of a tenant id (an outside check: "unknown shard BAD ID" read as a typo)
      ID_PATTERN.test(id)
        ? `unknown shard ${id}`
        : `unknown shard "${id}": not a valid shard id either (must match ${ID_PATTERN.source})`,
    );
  const r = parseConfigKey(`shards/${id}`, raw);
  if (r.ok && r.parsed.type === 'shard') return r.parsed.value;
  // an invalid entry: the command may be what fixes it, and the write is validated anyway
  const value = looseEntry(raw);
  if (!value) {
    throw new UserError(`shard ${id} has no readable entry (shards/${id} = ${raw} is not a JSON object)`);
  }
  const shard = value as ShardConfig;
  return { ...shard, replicas: Array.isArray(shard.replicas) ? shard.replicas : [] };
}

/**
 * The schema's verdict on a shard value, before any address is probed: a value the write would
 * refuse anyway is refused at once. (commitChanges validates the whole config again.)
 */
function checkShard(ctx: CtlContext, id: string, shard: ShardConfig): void {
  const key = `shards/${id}`;
  const r = parseConfigKey(key, JSON.stringify(shard));
  if (!r.ok) throw new UserError(problemsMessage(ctx.prefix, [{ key, reason: r.reason }]));
}

/**
 * Refuse (UserError) unless every endpoint takes a TCP connection; with `force`, warn on stderr
 * naming each one that does not, and go on. `command` names the command in the warning. Returns
 * the endpoints that did not connect (none unless `force`).
 */
async function requireReachable(
  ctx: CtlContext,
  command: string,
  endpoints: Endpoint[],
  force: boolean | undefined,
): Promise<Endpoint[]> {
  const failed = await unreachable(endpoints);
  if (failed.length === 0) return [];
  const list = failed
    .map(({ endpoint: e, error }) => `${e.what} ${formatHostPort(e.host, e.port)} unreachable (${error})`)
    .join('; ');
  if (!force) throw new UserError(`${list}; nothing written (--force to write it anyway)`);
  ctx.warn(`${command}: warning: ${list}; writing it anyway (--force)`);
  return failed.map((f) => f.endpoint);
}

/**
 * `set-master`'s check of the server itself (writable-master.ts), over the application's
 * credentials: a problem refuses the write unless `--force` (then it is a warning); a server the
 * CLI cannot log in to is refused the same way, since nothing could be checked.
 */
async function requireWritableMaster(
  ctx: CtlContext,
  command: 'shards add' | 'shards set-master',
  id: string,
  shard: ShardConfig,
  force: boolean | undefined,
): Promise<void> {
  const address = formatHostPort(shard.master.host, shard.master.port);
  const check = await writableMasterCheck(ctx, id, shard);
  // a new shard's master that cannot be asked (a login refused) is said by its schema line; a
  // new master of a shard in use must be asked
  if (check.unchecked && command === 'shards add') return;
  for (const warning of check.warnings) ctx.warn(`${command}: warning: ${address}: ${warning}`);
  if (check.problems.length === 0) return;
  const list = check.problems.join('; ');
  if (!force)
    throw new UserError(
      `master ${address} cannot take the shard's writes: ${list}; nothing written (see docs/operations.md, "When a master dies"; --force to write it anyway)`,
    );
  ctx.warn(`${command}: warning: master ${address}: ${list}; writing it anyway (--force)`);
}

/**
 * writable-master.ts's check of a shard's master; one that cannot be made is its problem, and
 * `unchecked` says so
 */
export async function writableMasterCheck(
  ctx: CtlContext,
  id: string,
  shard: ShardConfig,
): Promise<MasterCheck & { unchecked?: true }> {
  let check: MasterCheck & { unchecked?: true };
  try {
    const connection = await connectShardServer(ctx.env, id, shard, shard.master);
    try {
      check = await checkWritableMaster(connection);
    } finally {
      await connection.end().catch(() => {});
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    check = { problems: [`it could not be checked (${reason})`], warnings: [], unchecked: true };
  }
  return check;
}

/**
 * Whether the server at `replica` replicates from the one at `master` (tenant-rows.ts
 * replicaFollows: the replica's applied position read first, then the master's), over the
 * application's credentials: the check, or why it could not be made (a login refused, a server
 * that does not answer, an SQL error).
 */
async function followCheck(
  ctx: CtlContext,
  id: string,
  shard: ShardConfig,
  replica: HostPort,
  master: HostPort,
): Promise<FollowCheck | { error: string }> {
  const connections: Connection[] = [];
  try {
    const r = await connectShardServer(ctx.env, id, shard, replica);
    connections.push(r);
    const m = await connectShardServer(ctx.env, id, shard, master);
    connections.push(m);
    return await replicaFollows(r, m);
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  } finally {
    for (const c of connections) await c.end().catch(() => {});
  }
}

/**
 * `add-replica`'s check that the server replicates from the shard's master (followCheck): one
 * that has applied transactions the master does not have follows another server, and the
 * instances would read its rows as the shard's (an outside check added shard-1's replica to a
 * shard whose master is shard-2's: exit 0, no warning). Refused unless `--force`, then a warning.
 *
 * A check that cannot be made (the CLI cannot log in to either server, which is what happens
 * without SHARDGATE_DB_PASSWORD; one does not answer; the positions cannot be compared) is a
 * warning, and the replica is written: adding a replica needs etcd only (CONTRACT.md §5), as
 * `tenants create`'s row check warns when it cannot look. The stakes are lower than set-master's,
 * which refuses a master it cannot check: the instances exclude such a replica themselves
 * (src/routing/shard-router.ts) once they see it ahead of the master. An address the TCP check
 * before this one found unreachable is not asked (the caller skips this).
 */
async function requireFollowing(
  ctx: CtlContext,
  id: string,
  shard: ShardConfig,
  replica: HostPort,
  force: boolean | undefined,
): Promise<void> {
  const r = formatHostPort(replica.host, replica.port);
  const m = formatHostPort(shard.master.host, shard.master.port);
  const check = await followCheck(ctx, id, shard, replica, shard.master);
  if ('follows' in check && check.follows === true) return;
  if ('error' in check || check.follows === undefined) {
    const why =
      'error' in check
        ? `(${check.error})`
        : `: their positions cannot be compared ${followPositions(check)}`;
    ctx.warn(
      `shards add-replica: warning: whether replica ${r} replicates from master ${m} could not be checked ${why}; written all the same (the instances do not read from a replica ahead of its master)`,
    );
    return;
  }
  const problem = check.notReplicating
    ? notFollowingReason(r, m, check)
    : `${notFollowingReason(r, m, check)}: it does not replicate from this shard's master`;
  if (!force) throw new UserError(`${problem}; nothing written (--force to write it anyway)`);
  ctx.warn(`shards add-replica: warning: ${problem}; writing it anyway (--force)`);
}

/**
 * `set-master`'s check of each replica that stays in the shard against the new master
 * (followCheck): one ahead of it is a warning, never a refusal (a master died: the operator must
 * be able to promote another server whatever its replicas applied); the instances do not read
 * from such a replica until it is re-seeded from the new master. A replica that cannot be checked
 * is a warning too, for the same reason.
 */
async function warnReplicasAhead(
  ctx: CtlContext,
  command: 'shards add' | 'shards set-master',
  id: string,
  shard: ShardConfig,
): Promise<void> {
  const m = formatHostPort(shard.master.host, shard.master.port);
  const the = command === 'shards add' ? 'the master' : 'the new master';
  for (const replica of shard.replicas) {
    const r = formatHostPort(replica.host, replica.port);
    const check = await followCheck(ctx, id, shard, replica, shard.master);
    // (`shards add`: only what was found; a server that could not be asked is not the point)
    if ('error' in check) {
      if (command === 'shards set-master')
        ctx.warn(
          `${command}: warning: whether replica ${r} replicates from ${the} ${m} could not be checked (${check.error})`,
        );
    } else if (check.follows === false)
      ctx.warn(
        `${command}: warning: ${check.notReplicating ? notFollowingReason(r, `${m} (${the})`, check) : `replica ${r} has applied transactions ${the} ${m} does not have ${followPositions(check)}`}: it will not be read from until it is re-seeded from ${the}`,
      );
    else if (check.follows === undefined)
      ctx.warn(
        `${command}: warning: whether replica ${r} replicates from ${the} ${m} could not be checked: their positions cannot be compared ${followPositions(check)}`,
      );
  }
}

/** `--replica host:port[@weight]`; the weight, if given, within the schema's bounds */
export function parseReplica(text: string): ShardConfig['replicas'][number] {
  const at = text.indexOf('@');
  const hp = parseHostPort(at < 0 ? text : text.slice(0, at), '--replica');
  if (at < 0) return { ...hp, weight: 1 };
  const weight = wholeNumber(text.slice(at + 1), WEIGHT_MIN, WEIGHT_MAX);
  if (weight === undefined) throw new UserError(`--replica '${text}': the weight after @ must be ${WEIGHTS}`);
  return { ...hp, weight };
}

/** `--weight` of add-replica (default 1) */
function parseWeightOption(text: string | undefined): number {
  if (text === undefined) return 1;
  const weight = wholeNumber(text, WEIGHT_MIN, WEIGHT_MAX);
  if (weight === undefined) throw new UserError(`--weight '${text}': must be ${WEIGHTS}`);
  return weight;
}

const put = (id: string, shard: ShardConfig) => new Map([[`shards/${id}`, JSON.stringify(shard)]]);

/**
 * One row of `shards list` and `status`: every `shards/` key etcd holds, and each shard the
 * instances keep after its key was deleted under its tenants. A shard counts with its value in
 * force (a rejected key's last good value, state-in-force.ts); a key rejected with no good value
 * to fall back on shows what its value names (master null where it names none), as `tenants list`
 * shows a rejected entry. `problem` says why the key is rejected: by the schema here, or by the
 * instances named in `rejectedBy` (they judge with their own environment: SHARDGATE_DB_HOSTS, a
 * `passwordEnv`).
 */
export interface ShardRow {
  id: string;
  master: HostPort | null;
  replicas: ShardConfig['replicas'];
  database: string | null;
  passwordEnv?: string;
  tenants: number;
  /** this command's reason for a key counted with its last good value (the row shows that value) */
  rejected?: string;
  problem?: string;
  /** the key's value in etcd, when it has a problem */
  value?: string;
  /** the row shows the key's last good value, which the instances enforce */
  lastGood?: true;
  /** the instances that reject a key this command takes */
  rejectedBy?: string[];
}

/**
 * The rows of `read` (sorted by id); `s` = stateInForce's state; `byInstance` = the keys each
 * registered instance rejects, by instance id (instance-rejections.ts).
 */
export function shardRows(
  read: PrefixRead,
  s: ConfigState,
  byInstance: ReadonlyMap<string, readonly Rejected[]> = new Map(),
): ShardRow[] {
  const own = new Map(s.rejected.map((r) => [r.key, r.reason]));
  const ids = new Set([
    ...s.snapshot.shards.keys(),
    ...[...read.entries.keys()].filter((k) => k.startsWith(SHARDS)).map((k) => k.slice(SHARDS.length)),
  ]);
  const tenants = (id: string) => [...s.snapshot.tenants.values()].filter((t) => t.shard === id).length;
  return [...ids].sort().map((id): ShardRow => {
    const key = `${SHARDS}${id}`;
    const raw = read.entries.get(key);
    const reason = own.get(key);
    // what the instances reject and this command does not
    const others = new Map<string, string[]>();
    for (const [instance, rejected] of byInstance)
      for (const r of rejected)
        if (r.key === key && r.reason !== reason)
          others.set(r.reason, [...(others.get(r.reason) ?? []), instance]);
    const rejectedBy = [...new Set([...others.values()].flat())].sort();
    const theirs = [...others].map(([why, by]) => `rejected by ${by.join(', ')}: ${why}`).join('; ');
    const problem = reason ?? (theirs || undefined);
    const marks = {
      ...(problem === undefined ? {} : { problem, ...(raw === undefined ? {} : { value: raw }) }),
      ...(rejectedBy.length > 0 ? { rejectedBy } : {}),
    };
    const good = s.snapshot.shards.get(id);
    if (good)
      return {
        id,
        ...good,
        tenants: tenants(id),
        ...(reason === undefined ? {} : { rejected: reason, lastGood: true as const }),
        ...marks,
      };
    const loose = looseEntry(raw);
    const master = hostPortSchema.safeParse(loose?.master);
    const replicas = Array.isArray(loose?.replicas) ? loose.replicas : [];
    return {
      id,
      master: master.success ? master.data : null,
      replicas: replicas.flatMap((r) => {
        const p = replicaSchema.safeParse(r);
        return p.success ? [p.data] : [];
      }),
      database: typeof loose?.database === 'string' ? loose.database : null,
      tenants: tenants(id),
      ...marks,
      problem: problem ?? 'rejected by the config schema',
    };
  });
}

const SHARDS = 'shards/';

/**
 * The shards the instances route to, and every other `shards/` key with its problem (shardRows):
 * a key the schema or the registered instances reject is marked, as `tenants list` marks one.
 */
export async function listShards(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const read = await readPrefix(ctx);
  const { state: s } = await stateInForce(ctx, read);
  const instances = [...s.snapshot.instances];
  const byUrl = await instanceRejections(instances.map(([, i]) => i.url));
  const byInstance = new Map(
    instances.flatMap(([id, i]) => (byUrl.has(i.url) ? [[id, byUrl.get(i.url)!]] : [])),
  );
  const rows = shardRows(read, s, byInstance);
  if (opts.json) return ctx.out(JSON.stringify(rows, null, 2));
  if (rows.length === 0) return ctx.out('no shards');
  for (const line of shardLines(rows)) ctx.out(line);
  const bad = rows.filter((r) => r.problem).length;
  if (bad > 0)
    ctx.out(
      `${bad} of ${rows.length} shards have a problem: the API instances reject their keys and keep the last good value, if they had one (GET /health/config)`,
    );
}

/** One aligned line per shard: id, master, replicas (with weights), tenant count, its problem. */
export function shardLines(rows: readonly ShardRow[]): string[] {
  return alignColumns(
    rows.map((r) => [
      r.id,
      `master ${r.master ? formatHostPort(r.master.host, r.master.port) : '?'}`,
      `replicas ${r.replicas.map((x) => `${formatHostPort(x.host, x.port)}(w${x.weight})`).join(', ') || 'none'}`,
      `tenants ${r.tenants}${r.rejected ? ` (its key is rejected: ${r.rejected})` : ''}`,
      r.problem && !r.rejected ? `problem: ${terminalSafe(r.problem)}` : '',
    ]),
  );
}

export async function addShard(
  ctx: CtlContext,
  id: string,
  opts: { master: string; replica?: string[]; database?: string; passwordEnv?: string; force?: boolean },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid shard id "${id}": must match ${ID_PATTERN.source}`);
  const shard: ShardConfig = {
    master: parseHostPort(opts.master, '--master'),
    replicas: (opts.replica ?? []).map(parseReplica),
    database: opts.database ?? 'shardgate',
  };
  shard.replicas.forEach((r, i) => {
    const name = formatHostPort(r.host, r.port);
    if (sameServer(r, shard.master)) {
      throw new UserError(
        `--replica ${name} is the shard's master (--master): a server cannot be its own replica`,
      );
    }
    if (shard.replicas.slice(0, i).some((other) => sameServer(other, r)))
      throw new UserError(`--replica ${name} is given twice`);
  });
  if (opts.passwordEnv) shard.passwordEnv = opts.passwordEnv;
  let masterReachable = true;
  /** once per command: a write retried for a change in between does not ask the servers again */
  let checkedServers = false;
  await writeKeys(ctx, async (read) => {
    if (read.entries.has(`shards/${id}`)) throw new UserError(`shard ${id} already exists`);
    checkShard(ctx, id, shard);
    const endpoints = [
      { what: 'master', ...shard.master },
      ...shard.replicas.map((r) => ({ what: 'replica', host: r.host, port: r.port })),
    ];
    const failed = await requireReachable(ctx, 'shards add', endpoints, opts.force);
    masterReachable = !failed.some((e) => e.what === 'master');
    // what set-master asks of a master, and whether the replicas follow it (an outside check: a
    // read-only replica was written as a new shard's master, and another shard's replica as its
    // replica, without a word); not without the database password, which the schema line says
    if (masterReachable && !checkedServers && shardPassword(ctx.env, shard.passwordEnv) !== undefined) {
      checkedServers = true;
      await requireWritableMaster(ctx, 'shards add', id, shard, opts.force);
      await warnReplicasAhead(ctx, 'shards add', id, shard);
    }
    warnSharedDatabase(ctx, 'shards add', read, id, shard);
    return put(id, shard);
  });
  // once written, so a refused add has its one error line and no other
  const unset = passwordEnvWarning('shards add', id, shard.passwordEnv);
  if (unset) ctx.warn(unset);
  // the schema is read on the master only; a master found unreachable (written with --force) is
  // not waited on a second time, while a replica that was is no reason to skip the master's look
  const state = masterReachable
    ? await schemaState(ctx.env, id, shard)
    : { unchecked: 'its master was unreachable' };
  ctx.out(schemaLine(id, state, migrationCount()));
}

/**
 * Another shard whose master is this one's master with the same database holds the same rows:
 * fine for giving a shard a new id (tenants' entries pointed over, the old id removed), but a
 * `tenants move` between the two is refused. Said as a warning, the write goes on.
 */
function warnSharedDatabase(
  ctx: CtlContext,
  command: 'shards add' | 'shards set-master',
  read: PrefixRead,
  id: string,
  shard: ShardConfig,
): void {
  for (const [other, config] of loadState(read).snapshot.shards) {
    if (other === id || !sameDatabase(config, shard)) continue;
    ctx.warn(
      `${command}: warning: shard ${id}'s master ${formatHostPort(shard.master.host, shard.master.port)} database ${shard.database} is shard ${other}'s too: both ids name the same rows (tenants move between them is refused)`,
    );
  }
}

/**
 * Refused while tenants or `placement` name the shard (the config's own rule), and, unless
 * `force`, while something would be stranded there (shard-leftovers.ts): with `force` those are
 * printed as warnings and the shard goes all the same.
 */
export async function removeShard(
  ctx: CtlContext,
  id: string,
  opts: { force?: boolean } = {},
): Promise<void> {
  let checked: string | undefined;
  await writeKeys(ctx, async (read) => {
    const shard = shardOf(read, id);
    // once per command (a retried write reads again, the same shard's leftovers stand)
    const text = read.entries.get(`shards/${id}`);
    // the config's own rule first (it refuses the write): a shard refused anyway costs no look
    const { snapshot } = loadState(read);
    const held =
      [...snapshot.tenants.values()].some((t) => t.shard === id) || snapshot.placement?.shards.includes(id);
    if (!held && checked !== text) {
      const sharedWith = [...snapshot.shards].find(
        ([other, config]) => other !== id && sameDatabase(config, shard),
      )?.[0];
      const left = await shardLeftovers(ctx, id, shard, sharedWith);
      if (left.length > 0 && !opts.force)
        throw new UserError(
          `shard ${id} still has what removing it would strand: ${left.join('; ')}; nothing written (--force removes it all the same)`,
        );
      if (left.length > 0)
        ctx.warn(`shards remove: warning: ${left.join('; ')}; removing it anyway (--force)`);
      checked = text;
    }
    return new Map([[`shards/${id}`, undefined]]);
  });
}

export async function setMaster(
  ctx: CtlContext,
  id: string,
  hostPort: string,
  opts: { force?: boolean } = {},
): Promise<void> {
  const master = parseHostPort(hostPort, 'master');
  let promoted = false;
  await writeKeys(ctx, async (read) => {
    const shard = shardOf(read, id);
    // a replica named as the master is being promoted: it leaves the replicas in the same write,
    // so no read is ever sent to "a replica" that is the master (nor its lag measured against itself)
    const replicas = shard.replicas.filter((r) => !sameServer(r, master));
    promoted = replicas.length < shard.replicas.length;
    const next = { ...shard, master, replicas };
    checkShard(ctx, id, next);
    // the same address again changes nothing, whatever its state
    if (!sameServer(shard.master, master)) {
      if (
        (await requireReachable(ctx, 'shards set-master', [{ what: 'master', ...master }], opts.force))
          .length === 0
      ) {
        await requireWritableMaster(ctx, 'shards set-master', id, next, opts.force);
        await warnReplicasAhead(ctx, 'shards set-master', id, next);
      }
      warnSharedDatabase(ctx, 'shards set-master', read, id, next);
    }
    return put(id, next);
  });
  if (promoted)
    ctx.out(
      `shard ${id}: replica ${formatHostPort(master.host, master.port)} promoted to master and removed from the replicas (it must take writes and no longer follow the old master)`,
    );
}

export async function addReplica(
  ctx: CtlContext,
  id: string,
  hostPort: string,
  opts: { weight?: string; force?: boolean },
) {
  const hp = parseHostPort(hostPort, 'replica');
  const weight = parseWeightOption(opts.weight);
  await writeKeys(ctx, async (read) => {
    const shard = shardOf(read, id);
    if (shard.master && sameServer(shard.master, hp)) {
      throw new UserError(
        `replica ${hostPort} is the master of shard ${id}: a server cannot be its own replica`,
      );
    }
    if (shard.replicas.some((r) => sameServer(r, hp))) {
      throw new UserError(`shard ${id} already has replica ${hostPort}`);
    }
    const next = { ...shard, replicas: [...shard.replicas, { ...hp, weight }] };
    checkShard(ctx, id, next);
    if (
      (await requireReachable(ctx, 'shards add-replica', [{ what: 'replica', ...hp }], opts.force)).length ===
      0
    )
      await requireFollowing(ctx, id, next, hp, opts.force);
    return put(id, next);
  });
}

export async function removeReplica(ctx: CtlContext, id: string, hostPort: string): Promise<void> {
  const hp = parseHostPort(hostPort, 'replica');
  await writeKeys(ctx, (read) => {
    const shard = shardOf(read, id);
    const replicas = shard.replicas.filter((r) => !sameServer(r, hp));
    if (replicas.length === shard.replicas.length)
      throw new UserError(`shard ${id} has no replica ${hostPort}`);
    return put(id, { ...shard, replicas });
  });
}
