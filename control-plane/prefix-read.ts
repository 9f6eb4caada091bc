/**
 * One read of the whole etcd config prefix at one revision, and its validated view. Every command
 * starts from one; every write is guarded by its revision (guarded-commit.ts). A read that etcd
 * does not answer is the context's EtcdUnreachableError (exit 2).
 */
import { ConfigState } from '../src/config/config-state.js';
import { configValueText } from '../src/config/config-value-text.js';
import type { DbHostPolicy } from '../src/config/db-hosts.js';
import type { Entry } from '../src/config/history-restore.js';
import type { CtlContext } from './ctl-context.js';

export interface PrefixRead {
  revision: number;
  /** keys relative to the prefix → raw values */
  entries: Map<string, string>;
  /** keys relative to the prefix → etcd mod_revision */
  mods: Map<string, number>;
  /**
   * the SHARDGATE_DB_HOSTS of this process (ctx.env), by which the read is validated; undefined
   * allows every server, as it does for an instance without the variable
   */
  dbHosts?: DbHostPolicy;
}

export async function readPrefix(ctx: CtlContext): Promise<PrefixRead> {
  const res = await ctx.call(() => ctx.etcd.getAll().prefix(ctx.prefix).exec());
  const entries = new Map<string, string>();
  const mods = new Map<string, number>();
  for (const kv of res.kvs) {
    const key = kv.key.toString('utf8').slice(ctx.prefix.length);
    entries.set(key, configValueText(kv.value));
    mods.set(key, Number(kv.mod_revision));
  }
  return { revision: Number(res.header.revision), entries, mods, dbHosts: ctx.env.SHARDGATE_DB_HOSTS };
}

/**
 * The validated view of a read, computed exactly as the API instances compute it, with this
 * process's SHARDGATE_DB_HOSTS (`read.dbHosts`; the instances' own list is what they enforce, set
 * the same here). Reads nothing more from etcd: a key the schema rejects has no last good value
 * here (state-in-force.ts restores those from etcd's history).
 */
export function loadState(read: PrefixRead): ConfigState {
  const state = new ConfigState({ dbHosts: read.dbHosts });
  state.load(entriesWithMods(read, read.entries));
  return state;
}

/** `entries` as ConfigState.load takes them, each with its mod revision in `read` (0 if none). */
export function entriesWithMods(read: PrefixRead, entries: ReadonlyMap<string, string>): Entry[] {
  return [...entries].map(([k, v]): Entry => [k, v, read.mods.get(k) ?? 0]);
}
