/**
 * The verdict on a write before it is sent: the whole config the changes would produce, judged by
 * the API's own ConfigState (the same zod schema and reference checks the instances apply), and
 * the one-line message that refuses it. Pure: reads nothing (the values in force are the
 * caller's, stateInForce's).
 *
 * A shard's `passwordEnv` is not checked against this process's environment (ConfigState gets no
 * `processEnv`), though the instances reject one naming a variable they lack
 * (src/config/password-env.ts): shardgate-ctl commonly runs where the instances' secrets are not
 * (an operator's shell), so its environment says nothing of theirs: refusing would block a right
 * value. `shards add` and `config apply` warn of a variable their own environment lacks
 * (password-env-warning.ts); `status` asks the instances (`/health/config`) and names what they
 * reject, this included.
 */
import { ConfigState, type RejectedKey } from '../src/config/config-state.js';
import { looseEntry, looseTenantEntry } from '../src/config/loose-entry.js';
import type { Change } from './change-plan.js';
import { entriesWithMods, type PrefixRead } from './prefix-read.js';

/** How many tenants a refused shard removal names; the count is always exact. */
const HOLDERS_NAMED = 5;

/**
 * Whether a tenant entry's raw value once the request is applied (undefined: deleted) still
 * holds `shardId`. A value that is not a JSON object counts as still there: its own rejection
 * names it, and the instances keep the tenant's last good value, on that shard.
 */
function stillOn(raw: string | undefined, shardId: string): boolean {
  if (raw === undefined) return false;
  const entry = looseTenantEntry(raw);
  return entry === undefined || entry.shard === shardId;
}

/** the shards a raw `placement` value lists, as far as it can be read */
function placementShards(raw: string | undefined): string[] {
  const value = raw === undefined ? undefined : looseEntry(raw);
  const shards = value && (value as { shards?: unknown }).shards;
  return Array.isArray(shards) ? shards.filter((s): s is string => typeof s === 'string') : [];
}

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
  // loaded over what the instances hold, the state keeps what they keep (a shard deleted while
  // tenants are on it), so a write of such a tenant is judged as they judge it
  const stateOf = (entries: ReadonlyMap<string, string>) => {
    const s = new ConfigState({ dbHosts: current.dbHosts });
    if (inForce) s.load(entriesWithMods(current, inForce));
    s.load(entriesWithMods(current, entries));
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
      .filter(
        ([key, raw]) =>
          key.startsWith('tenants/') && looseTenantEntry(raw)?.shard === id && stillOn(next.get(key), id),
      )
      .map(([key]) => key.slice('tenants/'.length));
    if (holders.length > 0) {
      const named = holders.slice(0, HOLDERS_NAMED).join(', ');
      const others = holders.length - HOLDERS_NAMED;
      problems.push({
        key: c.key,
        reason: `shard still holds ${holders.length} tenant(s): ${named}${others > 0 ? ` and ${others} other tenant(s)` : ''}`,
      });
      for (const tid of holders) if (!changed.has(`tenants/${tid}`)) restated.add(`tenants/${tid}`);
      // the state's own rejection of the deleted key says the same again ("deleted while …")
      restated.add(c.key);
    }
    // `placement` naming it once the request is applied: its rejection ("unknown shard(s)") is
    // the effect; the cause, and what to do, is said on the shard's key
    if (placementShards(next.get('placement')).includes(id)) {
      problems.push({
        key: c.key,
        reason: 'shard is still listed in placement: take it out of placement first (config apply)',
      });
      if (!changed.has('placement')) restated.add('placement');
    }
  }
  problems.push(
    ...after.rejected
      .filter((r) => !restated.has(r.key) && (changed.has(r.key) || !beforeKeys.has(`${r.key}\0${r.reason}`)))
      // the write is refused whole: no value of it is "kept", the reason alone is the problem
      .map((r) => ({
        ...r,
        reason: withKnownShards(r.reason.replace(/; keeping last good value$/, ''), next, after),
      })),
  );
  return problems;
}

/**
 * An "unknown shard" reason with the shards a tenant or the placement may name once the request
 * is applied: those the state holds (a valid value, or a last good one kept for an invalid
 * value) whose `shards/*` key is still there (not one deleted, even if the instances keep it for
 * its tenants), as `tenants move` names them. Added here, to the CLI's refusal only: the state's
 * own reason is compared as it is (the filter above, and `status`), and must not change with the
 * shard list.
 */
function withKnownShards(reason: string, next: ReadonlyMap<string, string>, after: ConfigState): string {
  if (!reason.startsWith('unknown shard')) return reason;
  const known = [...after.snapshot.shards.keys()].filter((id) => next.has(`shards/${id}`)).sort();
  return `${reason} (known: ${known.length > 0 ? known.join(', ') : 'none'})`;
}

/**
 * A key a change is refused for: its value is invalid, or (`conflict`) the key changed in etcd
 * since the file was exported, whatever its value.
 */
export interface KeyProblem extends RejectedKey {
  conflict?: true;
}

/**
 * The one-line message of a refused change: the `notes` about the request as a whole first, then
 * every problem as `invalid <prefix><key>: <reason>` (`refused …` for a conflict), joined with
 * "; ", then "; nothing written".
 * Nothing is summarised as a bare count, so each number in the line counts what it says it counts.
 */
export function problemsMessage(
  prefix: string,
  problems: readonly KeyProblem[],
  notes: readonly string[] = [],
): string {
  const word = (p: KeyProblem) => (p.conflict ? 'refused' : 'invalid');
  const each = [...notes, ...problems.map((p) => `${word(p)} ${prefix}${p.key}: ${p.reason}`)];
  return `${each.join('; ')}; nothing written`;
}
