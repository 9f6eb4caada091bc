/**
 * The config the API instances enforce, as far as etcd can tell: a read with the last good values
 * of its rejected keys restored from etcd's history. A version etcd cannot give (compacted away,
 * or etcd not answering) ends that key's search: it stays rejected and unset, as in the plain read.
 */
import type { ConfigState } from '../src/config/config-state.js';
import {
  applyRestorePlan,
  etcdPutsReader,
  etcdVersionReader,
  planHistoryRestore,
} from '../src/config/history-restore.js';
import type { CtlContext } from './ctl-context.js';
import { entriesWithMods, loadState, type PrefixRead } from './prefix-read.js';

export interface StateInForce {
  state: ConfigState;
  /** every key → the value in force: a restored key's last good value in place of its current one */
  entries: Map<string, string>;
  /** restored key → the revision of the value in force */
  restored: Map<string, number>;
}

/**
 * `stateInForce(ctx, read)`: the config the API instances enforce, as far as etcd can tell. Keys
 * etcd holds but the schema rejects are not simply absent here: their last good values come back
 * from etcd's history exactly as a starting instance restores them (src/config/history-restore.ts),
 * and running instances, which saw every change, keep the same ones. So `breakers get` and
 * `status` show 9 for a threshold whose key went from 9 to "abc", as the instances enforce,
 * not the default. Without a rejected key this is `loadState(read)` and reads nothing more.
 */
export async function stateInForce(ctx: CtlContext, read: PrefixRead): Promise<StateInForce> {
  const state = loadState(read);
  const plain = { state, entries: read.entries, restored: new Map<string, number>() };
  if (state.rejected.length === 0) return plain;
  const reader = etcdVersionReader(ctx.etcd, ctx.prefix);
  const plan = await planHistoryRestore(
    entriesWithMods(read, read.entries),
    (key, revision) => ctx.call(() => reader(key, revision)),
    { dbHosts: read.dbHosts },
    read.revision,
    // a watch (at least 1 s): asked only for a gone shard a rejected tenant names
    etcdPutsReader(ctx.etcd, ctx.prefix),
  );
  if (!plan) return plain;
  applyRestorePlan(state, plan);
  return { state, entries: new Map(plan.base.map(([k, v]) => [k, v])), restored: plan.restored };
}
