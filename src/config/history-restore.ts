/**
 * `planHistoryRestore`: what a process that starts while keys are invalid should enforce, from
 * the keys' history — the last good value a running instance would have kept (CONTRACT.md §4).
 * Runtime-neutral: the history is read through `VersionReader` (etcd: a get at a revision).
 *
 * For each key the first full read rejects (instance registrations aside):
 * - a tenant naming a shard that is no longer in etcd gets that shard back as it was right before
 *   its deletion, as a running instance keeps it while tenants are on it (the newest version that
 *   validates on its own: a failover's `set-master` before the delete is kept). The deletion's
 *   revision is found by bisecting between the tenant's revision, when the shard existed, and
 *   the read's, when it did not: about log2(revisions between them) reads. When the tenant was
 *   written again after the shard's delete, its earlier versions naming that shard are tried. Should the shard have
 *   been deleted and re-created more than once since, the bisection finds one of its deletions;
 *   a tenant that named it after that one searches again from its own revision, and the later
 *   delete found is kept. One search per shard otherwise, however many tenants stood on it;
 *   A tenant version written before its shard existed (refused then, taken once the shard was
 *   put) finds the shard from that put on (`PutsReader`);
 * - otherwise the key's earlier versions are tried, newest first, each one that validates on its
 *   own in turn, until one is accepted together with everything else (a version naming a shard
 *   that never existed is skipped like an invalid one).
 * Bounded: at most HISTORY_STEPS versions per key, HISTORY_READS reads in all, a few rounds. A
 * version the reader cannot give (compacted away, etcd unreachable) ends that key's search; a
 * key without an accepted version stays as the plain read had it (rejected, unset).
 *
 * - a tenant or the placement written after a restored shard's delete and naming it (a new
 *   tenant, a move onto it) gets the version a running instance kept, as that refused the write
 *   (a shard kept for its tenants takes no new one): the newest earlier version not naming the
 *   shard (and naming only shards that existed at its revision), or none. A tenant that stood on
 *   the shard at its delete keeps its later versions.
 *
 * The plan: `base` to load (current values, with restored ones in place of rejected ones and
 * restored shards added), then `deletes` (restored shards, which the state keeps while tenants
 * are on them) and `puts` (each restored key's current value, which the state rejects "keeping
 * last good value").
 */
import type { Etcd3, Watcher } from 'etcd3';
import { type ConfigChange, ConfigState, type ConfigStateOptions, foldChanges } from './config-state.js';
import { configValueText } from './config-value-text.js';
import { parseConfigKey } from './schema.js';

export type Entry = [key: string, value: string, modRevision: number];

/** the version of `key` live at `revision` (undefined: the key did not exist then); may throw */
export type VersionReader = (
  key: string,
  revision: number,
) => Promise<{ value: string; mod: number } | undefined>;

/**
 * The revisions of the puts of `key` after revision `after`, up to now, oldest first (etcd: a
 * watch from `after + 1`); may throw (compacted). Optional: without it, a shard created after the
 * tenant version naming it is not found (as before it existed).
 */
export type PutsReader = (key: string, after: number) => Promise<number[]>;

export interface RestorePlan {
  base: Entry[];
  puts: Entry[];
  deletes: string[];
  /** key → the revision of the version put in force */
  restored: Map<string, number>;
}

export const HISTORY_STEPS = 20;
export const HISTORY_READS = 200;
/** watches of a gone shard's puts at one start (each takes at least its quiet second) */
export const HISTORY_WATCHES = 3;
const ROUNDS = 6;

type Version = { value: string; mod: number };

export async function planHistoryRestore(
  entries: Entry[],
  read: VersionReader,
  stateOptions: ConfigStateOptions,
  /** the revision `entries` were read at (a deletion after their newest mod revision counts) */
  revision: number,
  putsOf?: PutsReader,
): Promise<RestorePlan | undefined> {
  const current = new Map(entries.map(([k, value, mod]): [string, Version] => [k, { value, mod }]));
  const probe = new ConfigState(stateOptions);
  const rejectedOf = (base: Map<string, Version>) => {
    probe.load([...base].map(([k, v]): Entry => [k, v.value, v.mod]));
    return probe.rejected.map((r) => r.key).filter((k) => !k.startsWith('instances/'));
  };
  if (rejectedOf(current).length === 0) return undefined;

  let reads = HISTORY_READS;
  const readSafe = async (key: string, revision: number): Promise<Version | undefined | 'stop'> => {
    if (reads <= 0 || revision <= 0) return 'stop';
    reads--;
    try {
      return await read(key, revision);
    } catch {
      return 'stop'; // compacted, or etcd gone: nothing older can be had
    }
  };
  /** per key: the mod revisions of every version read, valid or not (see `untilOf`) */
  const modsRead = new Map<string, number[]>();
  /** earlier versions of `key` that validate on their own, newest first */
  const candidatesOf = async (key: string): Promise<Version[]> => {
    const out: Version[] = [];
    let before = (current.get(key)?.mod ?? 0) - 1;
    const mods = modsRead.get(key) ?? [];
    modsRead.set(key, mods);
    for (let step = 0; step < HISTORY_STEPS; step++) {
      const v = await readSafe(key, before);
      if (v === 'stop' || v === undefined) break;
      mods.push(v.mod);
      if (parseConfigKey(key, v.value).ok) out.push(v);
      before = v.mod - 1;
    }
    return out;
  };

  /**
   * The newest version of `key` that validates on its own before its deletion: it existed at
   * `from`, and not at `to` (or still did, when `to` is only the newest revision known).
   */
  const lastVersionOf = async (
    key: string,
    from: number,
    to: number,
  ): Promise<{ version: Version; existedAt: number | undefined } | undefined> => {
    const first = await readSafe(key, from);
    if (!first || first === 'stop') return undefined;
    let known: Version = first;
    let lo = from;
    let hi = to + 1;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const v = await readSafe(key, mid);
      if (v === 'stop') break; // out of reads: the newest version found so far
      if (v) {
        known = v;
        lo = mid;
      } else hi = mid;
    }
    for (let step = 0; step < HISTORY_STEPS; step++) {
      // the deletion's revision is known only when the search ran to its end
      if (parseConfigKey(key, known.value).ok)
        return { version: known, existedAt: hi - lo === 1 ? lo : undefined };
      const older = await readSafe(key, known.mod - 1);
      if (!older || older === 'stop') return undefined;
      known = older;
    }
    return undefined;
  };

  /**
   * The last revision at which the version of `key` written at `mod` was its value: right before
   * the next version (valid or not: an invalid put replaced it as the value a later shard put
   * is judged with), now for the current one.
   */
  const untilOf = (key: string, mod: number): number => {
    const next = [current.get(key)?.mod ?? Number.POSITIVE_INFINITY, ...(modsRead.get(key) ?? [])]
      .filter((m) => m > mod)
      .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
    return next === Number.POSITIVE_INFINITY ? revision : next - 1;
  };

  /** per key: the puts after the smallest revision read so far (a failed read keeps what it had) */
  const putsRead = new Map<string, { after: number; puts: number[] }>();
  let watches = HISTORY_WATCHES;
  /**
   * The first put of `key` (a shard) in (after, until], undefined when none, 'stop' when unknown.
   * One watch per shard in the common case: the first one starts before every current tenant
   * entry naming the shard, so the other tenants on it are answered from it; only an older
   * version of a tenant (written again since) needs another, and at most HISTORY_WATCHES run.
   */
  const firstPutIn = async (
    key: string,
    after: number,
    until: number,
  ): Promise<number | undefined | 'stop'> => {
    if (!putsOf) return 'stop';
    const known = putsRead.get(key);
    if (known === undefined || known.after > after) {
      if (watches <= 0) return 'stop';
      watches--;
      const from = Math.min(after, ...namingMods(key));
      try {
        putsRead.set(key, { after: from, puts: await putsOf(key, from) });
      } catch {
        // compacted, or etcd gone: this window is unknown, what an earlier watch read still holds
        return 'stop';
      }
    }
    return putsRead.get(key)!.puts.find((rev) => rev > after && rev <= until);
  };
  /** the mod revisions of the current tenant entries naming shard key `key` (each less one) */
  const namingMods = (key: string): number[] =>
    [...current].flatMap(([k, v]) => {
      const parsed = parseConfigKey(k, v.value);
      return parsed.ok && parsed.parsed.type === 'tenant' && `shards/${parsed.parsed.value.shard}` === key
        ? [v.mod]
        : [];
    });

  /**
   * `shardKey` as it was right before its deletion, found from a tenant on it: from the tenant's
   * version in `value`, or from an earlier one naming the same shard when the shard was already
   * gone when that was written (a tenant put, say made readonly, after the shard's delete: a
   * starting instance sent it to 404 while the running ones served it — an outside check).
   */
  const shardBefore = async (
    key: string,
    shardKey: string,
    value: Version,
    /** the shard is known to have existed until then: a version of the tenant no newer tells nothing new */
    knownUntil: number | undefined,
  ): Promise<{ version: Version; existedAt: number | undefined } | undefined> => {
    let version: Version | undefined = value;
    // the last revision at which `version` was the tenant's value
    let until = untilOf(key, value.mod);
    for (let step = 0; version && step < HISTORY_STEPS; step++) {
      if (knownUntil !== undefined && version.mod <= knownUntil) return undefined;
      const parsed = parseConfigKey(key, version.value);
      if (
        parsed.ok &&
        parsed.parsed.type === 'tenant' &&
        `shards/${parsed.parsed.value.shard}` === shardKey
      ) {
        const shard = await lastVersionOf(shardKey, version.mod, revision);
        if (shard) return shard;
        // The shard was not there when this version was written: refused then, and taken by
        // the running instances once the shard was put while it still was the tenant's value
        // (an outside check: a starting instance served the version before, on another shard,
        // and took writes the running ones refused). From that put, the shard until its delete.
        const created = await firstPutIn(shardKey, version.mod, until);
        if (created !== undefined && created !== 'stop') {
          const later = await lastVersionOf(shardKey, created, revision);
          if (later) return later;
        }
      }
      until = version.mod - 1;
      const older = await readSafe(key, version.mod - 1);
      version = older === 'stop' ? undefined : older;
    }
    return undefined;
  };

  const candidates = new Map<string, Version[]>();
  const choice = new Map<string, number>();
  /**
   * restored shards: the version, and the last revision at which the shard existed (its delete
   * came right after; undefined when the search for it stopped short: out of reads, compacted)
   */
  const shardsBack = new Map<string, { version: Version; existedAt: number | undefined }>();
  /**
   * `<shard key>\n<tenant key>` pairs looked up: each tenant naming a gone shard tries once. Per
   * shard, the first tenant to try it could be one refused by the running instances (put naming
   * it after its delete, with no earlier version on it): its failed lookup left the shard gone,
   * and every tenant really on it answered 404 on the starting instance (an outside check).
   */
  const triedShards = new Set<string>();
  const baseNow = () => {
    const base = new Map(current);
    for (const [k, i] of choice) base.set(k, candidates.get(k)![i]!);
    for (const [k, v] of shardsBack) base.set(k, v.version);
    return base;
  };

  for (let round = 0; round < ROUNDS; round++) {
    const base = baseNow();
    const rejected = rejectedOf(base);
    if (rejected.length === 0) break;
    let progress = false;
    for (const key of rejected) {
      const value = base.get(key);
      if (!value) continue; // a kept deleted key: nothing to read
      const parsed = parseConfigKey(key, value.value);
      if (parsed.ok && parsed.parsed.type === 'tenant') {
        const shardKey = `shards/${parsed.parsed.value.shard}`;
        if (!current.has(shardKey) && !triedShards.has(`${shardKey}\n${key}`)) {
          triedShards.add(`${shardKey}\n${key}`);
          // the shard as it was right before it was deleted. Once a delete is known, a tenant
          // looks only when it named the shard after that delete (a re-created shard deleted
          // again: the later delete is the one the running instances kept it at), so the
          // tenants of a shard do not each spend the reads of a search (40 tenants left none,
          // and a restore short of reads enforced the shard's master from before a failover
          // and served a tenant the running instances refused — a review)
          const known = shardsBack.get(shardKey);
          const shard = await shardBefore(key, shardKey, value, known?.existedAt);
          if (shard && isBetter(shard, known)) {
            shardsBack.set(shardKey, shard);
            progress = true;
            continue;
          }
        }
        // the shard was restored during this round: the tenant is judged again in the next
        if (!base.has(shardKey) && shardsBack.has(shardKey)) continue;
      }
      if (!candidates.has(key)) candidates.set(key, await candidatesOf(key));
      const next = (choice.get(key) ?? -1) + 1;
      if (next < candidates.get(key)!.length) {
        choice.set(key, next);
        progress = true;
      }
    }
    if (!progress) break;
  }

  // keep only what is accepted in the end
  const finalRejected = new Set(rejectedOf(baseNow()));
  for (const key of [...choice.keys()]) if (finalRejected.has(key)) choice.delete(key);
  for (const key of [...shardsBack.keys()]) if (finalRejected.has(key)) shardsBack.delete(key);
  if (choice.size === 0 && shardsBack.size === 0) return undefined;
  const base = baseNow();
  const restored = new Map([
    ...[...choice].map(([k, i]): [string, number] => [k, candidates.get(k)![i]!.mod]),
    ...[...shardsBack].map(([k, v]): [string, number] => [k, v.version.mod]),
  ]);
  const puts = [...choice.keys()];
  // writes naming a restored shard after its delete: what the running instances kept instead
  for (const [shardKey, { existedAt }] of shardsBack) {
    if (existedAt === undefined) continue; // as before: such writes are taken
    const shard = shardKey.slice('shards/'.length);
    for (const [key, value] of [...base]) {
      if (value.mod <= existedAt || !names(key, value, shard)) continue;
      const kept = await keptInstead(key, value, shard, existedAt);
      if (kept === 'as is') continue;
      if (kept) {
        base.set(key, kept);
        restored.set(key, kept.mod);
      } else base.delete(key);
      if (!puts.includes(key)) puts.push(key);
    }
  }
  return {
    base: [...base].map(([k, v]): Entry => [k, v.value, v.mod]),
    puts: puts.map((k): Entry => [k, current.get(k)!.value, current.get(k)!.mod]),
    deletes: [...shardsBack.keys()],
    restored,
  };

  /**
   * `value`, written after `shard` was deleted (it still existed at `existedAt`) and naming it:
   * what a running instance enforces for `key` instead. A shard kept for its tenants takes no
   * new one and no placement names it (config-state.ts): the newest earlier version that does
   * not name it, valid on its own (undefined: none, the key did not exist then). A tenant that
   * stood on the shard when it was deleted stays on it: its later writes are taken, 'as is'. So
   * is a key whose history cannot be read that far (compacted): before this, every such write
   * was taken by a starting instance, and a new tenant refused by the running ones was served.
   */
  async function keptInstead(
    key: string,
    value: Version,
    shard: string,
    existedAt: number,
  ): Promise<Version | undefined | 'as is'> {
    let version = value;
    for (let step = 0; step < HISTORY_STEPS; step++) {
      const older = await readSafe(key, version.mod - 1);
      if (older === 'stop') return 'as is';
      if (older === undefined) return undefined;
      version = older;
      if (!parseConfigKey(key, older.value).ok) continue; // refused by the running ones too
      if (!names(key, older, shard)) {
        // refused by the running ones too when a shard it names did not exist then (a typo):
        // restored, it would be rejected here and the tenant dropped (a review)
        const existed = await namedShardsExisted(key, older);
        if (existed === 'stop') return 'as is';
        if (existed) return older;
        continue;
      }
      if (older.mod <= existedAt) return key === 'placement' ? older : 'as is';
    }
    return 'as is';
  }

  /** whether every shard `version` of `key` names existed at its revision ('stop': unknown) */
  async function namedShardsExisted(key: string, version: Version): Promise<boolean | 'stop'> {
    const parsed = parseConfigKey(key, version.value);
    const shards = !parsed.ok
      ? []
      : parsed.parsed.type === 'tenant'
        ? [parsed.parsed.value.shard]
        : parsed.parsed.type === 'placement'
          ? parsed.parsed.value.shards
          : [];
    for (const shard of shards) {
      const v = await readSafe(`shards/${shard}`, version.mod);
      if (v === 'stop') return 'stop';
      if (!v) return false;
    }
    return true;
  }
}

/**
 * Of two lookups of one deleted shard, the one to keep: one that found its delete exactly over
 * one that stopped short, and of two exact ones the later delete.
 */
function isBetter(
  found: { existedAt: number | undefined },
  known: { existedAt: number | undefined } | undefined,
): boolean {
  if (!known) return true;
  if (found.existedAt === undefined) return false;
  return known.existedAt === undefined || found.existedAt > known.existedAt;
}

/** whether `value` of `key` (a tenant or the placement) names `shard` */
function names(key: string, value: Version, shard: string): boolean {
  const parsed = parseConfigKey(key, value.value);
  if (!parsed.ok) return false;
  if (parsed.parsed.type === 'tenant') return parsed.parsed.value.shard === shard;
  if (parsed.parsed.type === 'placement') return parsed.parsed.value.shards.includes(shard);
  return false;
}

/**
 * Load `plan` into `state` as a starting instance does: the base (restored values in force), then
 * each restored key's current value (rejected, "keeping last good value"), then the deletes of
 * restored shards (kept while tenants are on them). Answers the changes of the base's load.
 */
export function applyRestorePlan(state: ConfigState, plan: RestorePlan): ConfigChange[] {
  const changes = [state.load(plan.base)];
  // the deletes first: a put naming a restored shard is then judged as the running instances
  // judged it, against a shard kept only for its tenants
  for (const key of plan.deletes) changes.push(state.delete(key));
  for (const [key, value, mod] of plan.puts) changes.push(state.put(key, value, mod));
  return foldChanges(...changes);
}

/**
 * A PutsReader over an etcd3 client: a watch of `<prefix><key>` from `after + 1`. etcd sends a
 * watch's stored events within its sync loop (every 100 ms) and then only new ones, and has no
 * end-of-history mark a client of etcd3 can ask for: the events that came within `quietMs` of
 * the watch's start (and then within `quietMs` of each other) are taken as the key's history.
 * Only a starting instance's restore asks, for a shard a rejected tenant names and that is gone.
 * Rejects when etcd cancels the watch (its start revision compacted away) or after `deadlineMs`.
 */
export function etcdPutsReader(client: Etcd3, prefix: string, quietMs = 1000, deadlineMs = 5000): PutsReader {
  return async (key, after) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let gaveUp = false;
    let watcher: Watcher | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no history of ${key} within ${deadlineMs} ms`)), deadlineMs);
    });
    const watch = (async () => {
      const created = await client
        .watch()
        .key(`${prefix}${key}`)
        .startRevision(String(after + 1))
        .create();
      if (gaveUp) void stopWatching(created); // created after the deadline: nobody reads it
      watcher = created;
      return await new Promise<number[]>((resolve, reject) => {
        const puts: number[] = [];
        let quiet = setTimeout(() => resolve(puts), quietMs);
        created.on('data', (res) => {
          for (const event of res.events) if (event.type === 'Put') puts.push(Number(event.kv.mod_revision));
          clearTimeout(quiet);
          quiet = setTimeout(() => resolve(puts), quietMs);
        });
        // a start revision etcd compacted away: it cancels the watch and says so here
        created.on('error', (error) => {
          clearTimeout(quiet);
          reject(error);
        });
      });
    })();
    watch.catch(() => {}); // given up on at the deadline: its own end is of no interest
    try {
      return await Promise.race([watch, deadline]);
    } finally {
      gaveUp = true;
      clearTimeout(timer);
      if (watcher) await stopWatching(watcher);
    }
  };
}

/**
 * Cancels `watcher`, waiting at most 500 ms: a watch etcd already cancelled (its start revision
 * compacted) never answers a cancel, and an instance's start waited on it for good (a review).
 */
async function stopWatching(watcher: Watcher): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    watcher.cancel().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 500);
    }),
  ]);
  clearTimeout(timer);
}

/** A VersionReader over an etcd3 client: a get of `<prefix><key>` at a revision. */
export function etcdVersionReader(client: Etcd3, prefix: string): VersionReader {
  return async (key, revision) => {
    const res = await client.get(`${prefix}${key}`).revision(String(revision)).exec();
    const kv = res.kvs[0];
    return kv ? { value: configValueText(kv.value), mod: Number(kv.mod_revision) } : undefined;
  };
}
