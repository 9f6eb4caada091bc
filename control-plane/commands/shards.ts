/**
 * `shards list|add|remove|set-master|add-replica|remove-replica`. Every change is validated by the
 * API's schema; removing a shard that still holds tenants is refused. An address that `add`,
 * `set-master` or `add-replica` writes must take a TCP connection first (reachability.ts), unless
 * --force: then the command warns on stderr and writes it anyway.
 */
import { ID_PATTERN, parseConfigKey, type ShardConfig } from '../../src/config/schema.js';
import { loadState, type PrefixRead, problemsMessage, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { type Endpoint, unreachable } from '../reachability.js';
import { writeKeys } from '../write-keys.js';

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(text);
  if (!m) throw new UserError(`invalid ${what} "${text}": expected host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

function shardOf(read: PrefixRead, id: string): ShardConfig {
  const raw = read.entries.get(`shards/${id}`);
  if (!raw) throw new UserError(`unknown shard ${id}`);
  const r = parseConfigKey(`shards/${id}`, raw);
  if (r.ok && r.parsed.type === 'shard') return r.parsed.value;
  // an invalid entry: the command may be what fixes it, and the write is validated anyway
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
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
 * naming each one that does not, and go on. `command` names the command in the warning.
 */
async function requireReachable(
  ctx: CtlContext,
  command: string,
  endpoints: Endpoint[],
  force: boolean | undefined,
): Promise<void> {
  const failed = await unreachable(endpoints);
  if (failed.length === 0) return;
  const list = failed
    .map(({ endpoint: e, error }) => `${e.what} ${e.host}:${e.port} unreachable (${error})`)
    .join('; ');
  if (!force) throw new UserError(`${list}; nothing written (--force to write it anyway)`);
  ctx.warn(`${command}: warning: ${list}; writing it anyway (--force)`);
}

const put = (id: string, shard: ShardConfig) => new Map([[`shards/${id}`, JSON.stringify(shard)]]);

export async function listShards(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const read = await readPrefix(ctx);
  const s = loadState(read);
  const rows = [...s.snapshot.shards].map(([id, sh]) => ({
    id,
    ...sh,
    tenants: [...s.snapshot.tenants.values()].filter((t) => t.shard === id).length,
  }));
  if (opts.json) return ctx.out(JSON.stringify(rows, null, 2));
  for (const r of rows) {
    const replicas = r.replicas.map((x) => `${x.host}:${x.port}(w${x.weight})`).join(', ') || 'none';
    ctx.out(
      `${r.id.padEnd(12)} master ${r.master.host}:${r.master.port}  replicas ${replicas}  tenants ${r.tenants}`,
    );
  }
}

export async function addShard(
  ctx: CtlContext,
  id: string,
  opts: { master: string; replica?: string[]; database?: string; passwordEnv?: string; force?: boolean },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid shard id "${id}": must match ${ID_PATTERN.source}`);
  const shard: ShardConfig = {
    master: parseHostPort(opts.master, '--master'),
    replicas: (opts.replica ?? []).map((r) => {
      const [hp, w] = r.split('@');
      return { ...parseHostPort(hp!, '--replica'), weight: w === undefined ? 1 : Number(w) };
    }),
    database: opts.database ?? 'shardgate',
  };
  if (opts.passwordEnv) shard.passwordEnv = opts.passwordEnv;
  await writeKeys(ctx, async (read) => {
    if (read.entries.has(`shards/${id}`)) throw new UserError(`shard ${id} already exists`);
    checkShard(ctx, id, shard);
    const endpoints = [
      { what: 'master', ...shard.master },
      ...shard.replicas.map((r) => ({ what: 'replica', host: r.host, port: r.port })),
    ];
    await requireReachable(ctx, 'shards add', endpoints, opts.force);
    return put(id, shard);
  });
}

export async function removeShard(ctx: CtlContext, id: string): Promise<void> {
  await writeKeys(ctx, (read) => {
    shardOf(read, id);
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
  await writeKeys(ctx, async (read) => {
    const shard = shardOf(read, id);
    const next = { ...shard, master };
    checkShard(ctx, id, next);
    // the same address again changes nothing, whatever its state
    if (shard.master.host !== master.host || shard.master.port !== master.port) {
      await requireReachable(ctx, 'shards set-master', [{ what: 'master', ...master }], opts.force);
    }
    return put(id, next);
  });
}

export async function addReplica(
  ctx: CtlContext,
  id: string,
  hostPort: string,
  opts: { weight?: string; force?: boolean },
) {
  const hp = parseHostPort(hostPort, 'replica');
  const weight = opts.weight === undefined ? 1 : Number(opts.weight);
  await writeKeys(ctx, async (read) => {
    const shard = shardOf(read, id);
    if (shard.replicas.some((r) => r.host === hp.host && r.port === hp.port)) {
      throw new UserError(`shard ${id} already has replica ${hostPort}`);
    }
    const next = { ...shard, replicas: [...shard.replicas, { ...hp, weight }] };
    checkShard(ctx, id, next);
    await requireReachable(ctx, 'shards add-replica', [{ what: 'replica', ...hp }], opts.force);
    return put(id, next);
  });
}

export async function removeReplica(ctx: CtlContext, id: string, hostPort: string): Promise<void> {
  const hp = parseHostPort(hostPort, 'replica');
  await writeKeys(ctx, (read) => {
    const shard = shardOf(read, id);
    const replicas = shard.replicas.filter((r) => !(r.host === hp.host && r.port === hp.port));
    if (replicas.length === shard.replicas.length)
      throw new UserError(`shard ${id} has no replica ${hostPort}`);
    return put(id, { ...shard, replicas });
  });
}
