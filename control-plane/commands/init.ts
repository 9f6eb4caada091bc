/**
 * `shardgate-ctl init`: seed the defaults of every setting that is absent (never overwrites an
 * existing key unless --force). Unless --no-topology, and only while etcd holds no shard at all,
 * also the shards, placement and LB weights of the local topology (stack/topology-config.ts), so
 * a fresh local stack is usable at once. Once a shard exists the topology is the operator's: a
 * shard removed, a placement changed or a weight deleted (to fall back to haproxy.cfg's) stays so
 * across `npm run stack -- up`, which runs `init` every time; before, each `up` put them back, and
 * `init` against a cluster of other shards added the local stack's shards beside them. A deleted
 * setting comes back as its default, which is what applies without it anyway, except a seeded
 * per-kind breaker setting (`breakers/redis/call_timeout_ms`), without which the default key applies.
 */
import { DEFAULT_BREAKER_SETTINGS, DEFAULT_SCALARS, SEEDED_KIND_SETTINGS } from '../../src/config/schema.js';
import { topology } from '../../stack/topology.js';
import { topologyEntries } from '../../stack/topology-config.js';
import { formatChange, planChanges } from '../change-plan.js';
import type { CtlContext } from '../ctl-context.js';
import { commitChanges } from '../guarded-commit.js';
import { type PrefixRead, readPrefix } from '../prefix-read.js';

/**
 * The keys `init` seeds: every setting's default and the per-kind breaker settings of
 * SEEDED_KIND_SETTINGS, then (withTopology) the topology's keys.
 */
function defaultEntries({ withTopology }: { withTopology: boolean }): Map<string, string> {
  const entries = new Map<string, string>();
  for (const [setting, value] of Object.entries(DEFAULT_BREAKER_SETTINGS)) {
    entries.set(`breakers/default/${setting}`, String(value));
  }
  for (const [kind, settings] of Object.entries(SEEDED_KIND_SETTINGS))
    for (const [setting, value] of Object.entries(settings))
      entries.set(`breakers/${kind}/${setting}`, String(value));
  for (const [key, value] of Object.entries(DEFAULT_SCALARS)) entries.set(key, value);
  if (withTopology) {
    for (const [key, value] of topologyEntries({ hostOf: () => topology.host })) entries.set(key, value);
  }
  return entries;
}

/**
 * A seeded per-kind breaker setting that would be above the operator's own default for it
 * (`breakers/default/<setting>`, say a call timeout of 100 with Redis's 250 deleted): not seeded,
 * the kind keeps following the default. The seeds are there to lower a default, not to raise one.
 */
function raisesOwnDefault(read: PrefixRead, key: string, value: string): boolean {
  const m = /^breakers\/([^/]+)\/([^/]+)$/.exec(key);
  if (!m || m[1] === 'default') return false;
  const own = Number(read.entries.get(`breakers/default/${m[2]}`));
  return Number.isFinite(own) && own > 0 && own < Number(value);
}

export async function initCommand(
  ctx: CtlContext,
  opts: { force?: boolean; topology?: boolean },
): Promise<void> {
  const read = await readPrefix(ctx);
  const hasShard = [...read.entries.keys()].some((key) => key.startsWith('shards/'));
  const defaults = defaultEntries({ withTopology: opts.topology !== false && (opts.force || !hasShard) });
  const desired = new Map<string, string | undefined>();
  for (const [key, value] of defaults) {
    if (opts.force || (!read.entries.has(key) && !raisesOwnDefault(read, key, value)))
      desired.set(key, value);
  }
  const changes = planChanges(read, desired);
  if (changes.length === 0) {
    ctx.out(`etcd already initialised (revision ${read.revision}); nothing to do`);
    return;
  }
  const revision = await commitChanges(ctx, read, changes);
  for (const c of changes) ctx.out(formatChange(c));
  ctx.out(`initialised ${changes.length} key(s) at revision ${revision}`);
}
