/**
 * `shards list|add|remove|set-master|add-replica|remove-replica`. Every change is validated by the
 * API's schema; removing a shard that still holds tenants is refused.
 */
import { ID_PATTERN, type ShardConfig } from '../../src/config/schema.js';
import { loadState, type PrefixRead, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { writeKeys } from '../write-keys.js';

export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const m = /^([^:\s]+):(\d{1,5})$/.exec(text);
  if (!m) throw new UserError(`invalid ${what} "${text}": expected host:port`);
  return { host: m[1]!, port: Number(m[2]) };
}

function shardOf(read: PrefixRead, id: string): ShardConfig {
  const raw = read.entries.get(`shards/${id}`);
  if (!raw) throw new UserError(`unknown shard ${id}`);
  return JSON.parse(raw) as ShardConfig;
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
  opts: { master: string; replica?: string[]; database?: string; passwordEnv?: string },
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
  await writeKeys(ctx, (read) => {
    if (read.entries.has(`shards/${id}`)) throw new UserError(`shard ${id} already exists`);
    return put(id, shard);
  });
}

export async function removeShard(ctx: CtlContext, id: string): Promise<void> {
  await writeKeys(ctx, (read) => {
    shardOf(read, id);
    return new Map([[`shards/${id}`, undefined]]);
  });
}

export async function setMaster(ctx: CtlContext, id: string, hostPort: string): Promise<void> {
  const master = parseHostPort(hostPort, 'master');
  await writeKeys(ctx, (read) => put(id, { ...shardOf(read, id), master }));
}

export async function addReplica(ctx: CtlContext, id: string, hostPort: string, opts: { weight?: string }) {
  const hp = parseHostPort(hostPort, 'replica');
  const weight = opts.weight === undefined ? 1 : Number(opts.weight);
  await writeKeys(ctx, (read) => {
    const shard = shardOf(read, id);
    if (shard.replicas.some((r) => r.host === hp.host && r.port === hp.port)) {
      throw new UserError(`shard ${id} already has replica ${hostPort}`);
    }
    return put(id, { ...shard, replicas: [...shard.replicas, { ...hp, weight }] });
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
