/**
 * The validated view of the etcd prefix. Runtime-neutral and synchronous: the etcd watcher and
 * the memory store both feed it raw key/value changes; it turns them into a `ConfigSnapshot`.
 *
 * Contract (CONTRACT.md §4): a value that fails validation is rejected and reported, and the last
 * good value of that key stays in force. References are checked too: a tenant naming an unknown
 * shard is rejected, and deleting a shard that still holds tenants is refused (the shard stays).
 */

import { ACCESS_LOG_KEY, type AccessLogMode } from './access-log-mode.js';
import { ALLOWED_HOSTS_KEY } from './allowed-hosts.js';
import { CORS_ORIGINS_KEY } from './cors-origins.js';
import { type DbHostPolicy, refusedServers } from './db-hosts.js';
import { LayeredMap } from './layered-map.js';
import { type ProcessEnv, refusedPasswordEnv } from './password-env.js';
import {
  BARRIER_KEY,
  BREAKER_KINDS,
  type BreakerKind,
  type BreakerSettings,
  CACHE_EPOCH_KEY,
  DEFAULT_BREAKER_SETTINGS,
  DEFAULT_SCALARS,
  type InstanceInfo,
  isCacheEpochKey,
  type ParsedKey,
  type ParseResult,
  type Placement,
  parseConfigKey,
  type ScalarKey,
  type ScalarValue,
  type ShardConfig,
  scalarSchemas,
  TENANT_CACHE_EPOCH_PREFIX,
  type TenantEntry,
} from './schema.js';

export interface RejectedKey {
  key: string;
  reason: string;
}

export interface ConfigSnapshot {
  /**
   * Config revision: the highest etcd revision that changed a config key this process has seen —
   * the mod_revision of a key present, or the revision of a delete it watched (instance
   * registrations excluded, so an instance re-registering does not move it). It never decreases
   * within a process, not even when a delete removes the key that held the highest mod_revision.
   * A full read cannot see past deletes, so an instance that loaded after a delete may show a
   * lower number than one that watched it; `shardgate-ctl status` counts an instance as behind
   * only when its number is below the highest mod_revision present.
   */
  revision: number;
  shards: ReadonlyMap<string, ShardConfig>;
  tenants: ReadonlyMap<string, TenantEntry>;
  placement: Placement | undefined;
  /** settings in force per breaker kind: kind override, else `breakers/default/*`, else built-in default */
  breakers: Readonly<Record<BreakerKind, BreakerSettings>>;
  /**
   * nearMaxEntries: in-process entries per instance (near-cache.ts); 0 = no near cache;
   * epoch: `runtime/cache_epoch` (0 while absent): entries filled under another are not served;
   * tenantEpochs: `runtime/tenant_cache_epoch/<id>` by tenant id (absent: 0), the same per tenant
   */
  cache: {
    enabled: boolean;
    ttlSeconds: number;
    nearMaxEntries: number;
    epoch: number;
    tenantEpochs: ReadonlyMap<string, number>;
  };
  replication: { maxLagSeconds: number; rywTimeoutMs: number; maxLatencyMs: number };
  /**
   * outboxRetentionHours: the email worker deletes outbox rows delivered, and created, longer
   * ago than this (outbox-retention.ts); 0 = keep every row
   */
  mail: { outboxRetentionHours: number };
  /** `cors/allowed_origins` (cors-origins.ts): empty = none, `['*']` = every origin */
  cors: { allowedOrigins: readonly string[] };
  /** `http/allowed_hosts` (allowed-hosts.ts): empty or `['*']` = every host */
  http: { allowedHosts: readonly string[]; accessLog: AccessLogMode };
  lbWeights: ReadonlyMap<string, number>;
  /** tenant id → when its move made it readonly (ms since the epoch): `moving/<id>` */
  moving: ReadonlyMap<string, number>;
  instances: ReadonlyMap<string, InstanceInfo>;
}

export interface ConfigChange {
  key: string;
  old: string | undefined;
  new: string | undefined;
}

/**
 * Several lists of changes made one after the other, as one: per key its first `old` and its last
 * `new`, in the order keys first changed; a key that ended where it started is left out.
 */
export function foldChanges(...lists: readonly (readonly ConfigChange[])[]): ConfigChange[] {
  const byKey = new Map<string, ConfigChange>();
  for (const list of lists)
    for (const c of list) {
      const first = byKey.get(c.key);
      byKey.set(c.key, { key: c.key, old: first ? first.old : c.old, new: c.new });
    }
  return [...byKey.values()].filter((c) => c.old !== c.new);
}

interface GoodEntry {
  raw: string;
  parsed: ParsedKey;
}

/** Shards first so references from tenants and placement can be checked in one pass. */
function isShardKey(key: string): boolean {
  return key.startsWith('shards/');
}

/** one change of the watched prefix, as ConfigState.apply takes a batch of them */
export type RawEvent =
  | { type: 'put'; key: string; value: string; modRevision: number }
  | { type: 'delete'; key: string; revision?: number };

/**
 * Keys the product writes itself, not an operator's settings: instance registrations and the cache
 * epoch. Their puts and deletes do not move the config revision (an instance would otherwise
 * re-register after each, and `shardgate-ctl status` call the others behind).
 */
/** by key, in code-unit order (localeCompare on every key cost more than the rest of a change) */
function byKey(a: { key: string }, b: { key: string }): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Keys whose change cannot change whether another key is valid (nothing refers to a tenant, a
 * move mark or an instance): checked alone by `recomputeLocal`.
 */
function isLocalKey(key: string): boolean {
  // the barrier is in no map of the snapshot: it moves the revision alone (schema.ts)
  return key.startsWith('tenants/') || key.startsWith('moving/') || isRuntimeKey(key) || key === BARRIER_KEY;
}

function isRuntimeKey(key: string): boolean {
  return key.startsWith('instances/') || isCacheEpochKey(key);
}

function defaultScalar(key: ScalarKey): ScalarValue {
  const r = scalarSchemas[key].safeParse(DEFAULT_SCALARS[key]);
  if (!r.success) throw new Error(`built-in default for ${key} is invalid`);
  return r.data;
}

export interface ConfigStateOptions {
  dbHosts?: DbHostPolicy;
  /**
   * the environment a shard's `passwordEnv` is looked up in (the instances' process.env): a shard
   * naming a variable absent from it is rejected (password-env.ts). Absent: not checked, for a
   * process that judges values for others with another environment (shardgate-ctl).
   */
  processEnv?: ProcessEnv;
  /** false: every change derives everything again (`recomputeLocal` never used; tests compare) */
  incremental?: boolean;
}

export class ConfigState {
  private raw = new Map<string, { value: string; mod: number }>();
  private good = new Map<string, GoodEntry>();
  /** the last parse of each raw key, by value (see recompute) */
  private parses = new Map<string, { raw: string; result: ParseResult }>();
  private rejectedKeys: RejectedKey[] = [];
  /** shards deleted but kept in force for the tenants still on them (keepDeletedShardsInUse) */
  private keptShards: ReadonlySet<string> = new Set();
  /** the config revision never goes below this: the last snapshot's, raised by watched deletes */
  private revisionFloor = 0;
  private current: ConfigSnapshot;
  private readonly dbHosts: DbHostPolicy | undefined;
  /** `dbHosts`: the servers a shard may name (SHARDGATE_DB_HOSTS); a shard naming another is rejected */
  private readonly incremental: boolean;
  /** where a shard's `passwordEnv` must be set; undefined: not checked */
  private readonly processEnv: ProcessEnv | undefined;
  constructor({ dbHosts, processEnv, incremental = true }: ConfigStateOptions = {}) {
    this.dbHosts = dbHosts;
    this.processEnv = processEnv;
    this.incremental = incremental;
    this.current = this.build();
  }

  get snapshot(): ConfigSnapshot {
    return this.current;
  }

  get rejected(): readonly RejectedKey[] {
    return this.rejectedKeys;
  }

  /**
   * Replace everything with a full read of the prefix (initial load, or resync after compaction).
   * `modRevision` is each key's etcd mod_revision (a plain counter in the memory store).
   */
  load(entries: Iterable<[key: string, value: string, modRevision?: number]>): ConfigChange[] {
    this.raw = new Map([...entries].map(([k, value, mod = 0]) => [k, { value, mod }]));
    return this.recompute();
  }

  put(key: string, value: string, modRevision: number): ConfigChange[] {
    return this.apply([{ type: 'put', key, value, modRevision }]);
  }

  /** `revision` is the etcd revision of the delete (a plain counter in the memory store) */
  delete(key: string, revision = 0): ConfigChange[] {
    return this.apply([{ type: 'delete', key, revision }]);
  }

  /**
   * Several changes (one watch response) at once: the snapshot is derived once for all of them.
   * Changes of only tenants, move marks and the keys the product writes itself (`instances/*`,
   * the cache epoch: every instance re-registers after each config change) update the snapshot
   * without deriving the rest again (`recomputeLocal`). Before, every event re-derived everything and sorted every key by
   * `localeCompare`: 57 ms per event at 5,000 tenants, three events per tenant put, and a bulk
   * of 5,000 puts left instances minutes behind and unresponsive (an outside check).
   */
  apply(events: readonly RawEvent[]): ConfigChange[] {
    for (const e of events) {
      if (e.type === 'put') this.raw.set(e.key, { value: e.value, mod: e.modRevision });
      else {
        this.raw.delete(e.key);
        if (!isRuntimeKey(e.key)) this.revisionFloor = Math.max(this.revisionFloor, e.revision ?? 0);
      }
    }
    const local =
      this.incremental && events.every((e) => isLocalKey(e.key) && !this.mayReleaseKeptShard(e.key));
    if (events.length > 0 && local) return this.recomputeLocal(new Set(events.map((e) => e.key)));
    return this.recompute();
  }

  /**
   * Whether a change of `key` may end the keeping of a deleted shard: it is a tenant whose last
   * good entry names a shard kept for its tenants (it may move off it, or go). Only such a change
   * needs the whole derivation while a shard is kept; before, every change did, and with 12,000
   * tenants 300 tenant puts kept instances from answering for 13–15 s (an outside check).
   */
  private mayReleaseKeptShard(key: string): boolean {
    if (this.keptShards.size === 0 || !key.startsWith('tenants/')) return false;
    const was = this.good.get(key)?.parsed;
    return was?.type === 'tenant' && this.keptShards.has(was.value.shard);
  }

  /**
   * `recompute` for a batch of only directory and runtime keys (see `isLocalKey`): those keys
   * are checked (against the shards in force, which they cannot change) and the snapshot's maps
   * of them are copied with the changes; nothing else is derived again. Not for a change of a
   * tenant on a deleted shard kept for its tenants (mayReleaseKeptShard): then the whole. A new
   * tenant naming a kept shard is refused here as there (referenceError).
   */
  private recomputeLocal(keys: ReadonlySet<string>): ConfigChange[] {
    const changes: ConfigChange[] = [];
    const rejected = this.rejectedKeys.filter((r) => !keys.has(r.key));
    for (const key of keys) {
      const previous = this.good.get(key);
      const raw = this.raw.get(key);
      let next: GoodEntry | undefined;
      if (raw) {
        let known = this.parses.get(key);
        if (known?.raw !== raw.value) known = { raw: raw.value, result: parseConfigKey(key, raw.value) };
        this.parses.set(key, known);
        const r = known.result;
        const reason = r.ok ? this.referenceError(r.parsed, this.good, previous) : r.reason;
        if (r.ok && !reason) next = { raw: raw.value, parsed: r.parsed };
        else {
          rejected.push({
            key,
            reason: previous ? `${reason}; keeping last good value` : (reason ?? 'invalid'),
          });
          next = previous;
        }
      } else this.parses.delete(key);
      if (next) this.good.set(key, next);
      else this.good.delete(key);
      if (previous?.raw !== next?.raw) changes.push({ key, old: previous?.raw, new: next?.raw });
    }
    this.rejectedKeys = rejected.sort(byKey);
    let revision = this.current.revision;
    for (const key of keys) {
      const mod = this.raw.get(key)?.mod;
      if (mod !== undefined && !isRuntimeKey(key)) revision = Math.max(revision, mod);
    }
    this.revisionFloor = revision = Math.max(revision, this.revisionFloor);
    if (changes.length === 0 && revision === this.current.revision) return changes;
    // new maps of only those a change touched; snapshots handed out before stay as they were.
    // The directory is layered (layered-map.ts): a copy of it per tenant put was O(tenants)
    const prev = this.current;
    const tenantSets: [string, TenantEntry][] = [];
    const tenantDeletes: string[] = [];
    let moving: Map<string, number> | undefined;
    let instances: Map<string, InstanceInfo> | undefined;
    let epoch = prev.cache.epoch;
    // layered as the directory: a copy of every tenant's epoch per move cost 4 ms at 12,000 (a review)
    const epochSets: [string, number][] = [];
    const epochDeletes: string[] = [];
    for (const { key, new: now } of changes) {
      const parsed = now === undefined ? undefined : this.good.get(key)?.parsed;
      if (key.startsWith('tenants/')) {
        const id = key.slice('tenants/'.length);
        if (parsed?.type === 'tenant') tenantSets.push([id, parsed.value]);
        else tenantDeletes.push(id);
      } else if (key.startsWith('moving/')) {
        moving ??= new Map(prev.moving);
        const id = key.slice('moving/'.length);
        if (parsed?.type === 'moving') moving.set(id, Date.parse(parsed.value.since));
        else moving.delete(id);
      } else if (key.startsWith('instances/')) {
        instances ??= new Map(prev.instances);
        const id = key.slice('instances/'.length);
        if (parsed?.type === 'instance') instances.set(id, parsed.value);
        else instances.delete(id);
      } else if (key === CACHE_EPOCH_KEY) {
        epoch = parsed?.type === 'cacheEpoch' ? parsed.value : 0;
      } else if (key.startsWith(TENANT_CACHE_EPOCH_PREFIX)) {
        const id = key.slice(TENANT_CACHE_EPOCH_PREFIX.length);
        if (parsed?.type === 'tenantCacheEpoch') epochSets.push([id, parsed.value]);
        else epochDeletes.push(id);
      }
    }
    this.current = {
      ...prev,
      revision,
      tenants:
        tenantSets.length + tenantDeletes.length === 0
          ? prev.tenants
          : LayeredMap.over(prev.tenants).with(tenantSets, tenantDeletes),
      moving: moving ?? prev.moving,
      instances: instances ?? prev.instances,
      cache:
        epoch === prev.cache.epoch && epochSets.length + epochDeletes.length === 0
          ? prev.cache
          : {
              ...prev.cache,
              epoch,
              tenantEpochs:
                epochSets.length + epochDeletes.length === 0
                  ? prev.cache.tenantEpochs
                  : LayeredMap.over(prev.cache.tenantEpochs).with(epochSets, epochDeletes),
            },
    };
    return changes;
  }

  /**
   * Re-derive the good set from the raw values, falling back to the previous good value of any
   * key that is now invalid. Every key's references are checked again, but a value is parsed only
   * when it changed: `parses` keeps each key's last parse by raw value (parseConfigKey is a pure
   * function of key and value). So one tenant put with thousands of tenants in the directory
   * parses one value, not all of them.
   */
  private recompute(): ConfigChange[] {
    const previous = this.good;
    const next = new Map<string, GoodEntry>();
    const rejected: RejectedKey[] = [];
    const parses = new Map<string, { raw: string; result: ParseResult }>();
    const parse = (key: string, value: string): ParseResult => {
      let known = parses.get(key) ?? this.parses.get(key);
      if (known?.raw !== value) known = { raw: value, result: parseConfigKey(key, value) };
      parses.set(key, known);
      return known.result;
    };
    const check = (key: string, value: string) => {
      const r = parse(key, value);
      const reason = r.ok ? this.referenceError(r.parsed, next, previous.get(key)) : r.reason;
      if (r.ok && !reason) {
        next.set(key, { raw: value, parsed: r.parsed });
        return;
      }
      const kept = previous.get(key);
      rejected.push({ key, reason: kept ? `${reason}; keeping last good value` : (reason ?? 'invalid') });
      if (kept) next.set(key, kept);
    };
    // shards first (tenants and the placement name them), then the rest; no sort of all keys
    for (const [key, { value }] of this.raw) if (isShardKey(key)) check(key, value);
    this.keptShards = this.keepDeletedShardsInUse(previous, next, rejected, parse);
    for (const [key, { value }] of this.raw) if (!isShardKey(key)) check(key, value);
    rejected.sort(byKey);
    const changes: ConfigChange[] = [];
    for (const [key, entry] of next) {
      const old = previous.get(key)?.raw;
      if (old !== entry.raw) changes.push({ key, old, new: entry.raw });
    }
    for (const [key, entry] of previous) {
      if (!next.has(key)) changes.push({ key, old: entry.raw, new: undefined });
    }
    this.good = next;
    this.parses = parses;
    this.rejectedKeys = rejected;
    this.current = this.build();
    return changes;
  }

  /**
   * A shard deleted while tenants still stand on it stays in force; the ids kept. A tenant stands
   * on a shard when its last good entry names it, unless its value now names another shard in
   * force, which it moves to (a new tenant naming a kept shard is refused by referenceError, so
   * it holds nothing).
   */
  private keepDeletedShardsInUse(
    previous: Map<string, GoodEntry>,
    next: Map<string, GoodEntry>,
    rejected: RejectedKey[],
    parse: (key: string, value: string) => ParseResult,
  ): Set<string> {
    const holders = new Map<string, number>();
    for (const [key, { value }] of this.raw) {
      if (!key.startsWith('tenants/')) continue;
      const was = previous.get(key)?.parsed;
      if (was?.type !== 'tenant') continue;
      const r = parse(key, value);
      const now = r.ok && r.parsed.type === 'tenant' ? r.parsed.value.shard : undefined;
      if (now !== undefined && now !== was.value.shard && next.has(`shards/${now}`)) continue;
      holders.set(was.value.shard, (holders.get(was.value.shard) ?? 0) + 1);
    }
    const kept = new Set<string>();
    for (const [key, entry] of previous) {
      if (next.has(key) || entry.parsed.type !== 'shard' || this.raw.has(key)) continue;
      const count = holders.get(entry.parsed.id) ?? 0;
      if (count > 0) {
        next.set(key, entry);
        rejected.push({ key, reason: `deleted while ${count} tenant(s) still on it; keeping it` });
        kept.add(entry.parsed.id);
      }
    }
    return kept;
  }

  /**
   * `before`: the key's last good entry. A shard deleted but kept for its tenants takes no new
   * one: a tenant may name it only if its last good entry did (a status change of a tenant still
   * on it, e.g. a move off it making it readonly).
   */
  private referenceError(
    parsed: ParsedKey,
    good: Map<string, GoodEntry>,
    before: GoodEntry | undefined,
  ): string | undefined {
    if (parsed.type === 'shard') {
      const why = [
        refusedServers(this.dbHosts, parsed.value),
        refusedPasswordEnv(this.processEnv, parsed.value.passwordEnv),
      ].filter((r) => r !== undefined);
      return why.length > 0 ? why.join('; ') : undefined;
    }
    if (parsed.type === 'tenant' && !good.has(`shards/${parsed.value.shard}`)) {
      return `unknown shard "${parsed.value.shard}"`;
    }
    if (parsed.type === 'tenant' && this.keptShards.has(parsed.value.shard)) {
      const was = before?.parsed.type === 'tenant' ? before.parsed.value.shard : undefined;
      if (was !== parsed.value.shard)
        return `shard "${parsed.value.shard}" is deleted (kept only for the tenants still on it)`;
    }
    if (parsed.type === 'placement') {
      const missing = parsed.value.shards.filter((s) => !good.has(`shards/${s}`));
      if (missing.length > 0) return `unknown shard(s) ${missing.map((s) => `"${s}"`).join(', ')}`;
      // new tenants go where placement says: not onto a shard kept only for its tenants
      const deleted = parsed.value.shards.filter((s) => this.keptShards.has(s));
      if (deleted.length > 0)
        return `shard(s) ${deleted.map((s) => `"${s}"`).join(', ')} deleted (kept only for the tenants still on them)`;
    }
    return undefined;
  }

  private build(): ConfigSnapshot {
    const shards = new Map<string, ShardConfig>();
    const tenants = new Map<string, TenantEntry>();
    const lbWeights = new Map<string, number>();
    const moving = new Map<string, number>();
    const instances = new Map<string, InstanceInfo>();
    const scalars = new Map<ScalarKey, ScalarValue>();
    const defaults: Partial<BreakerSettings> = {};
    const perKind: Partial<Record<BreakerKind, Partial<BreakerSettings>>> = {};
    let placement: Placement | undefined;
    let cacheEpoch = 0;
    const tenantEpochs = new Map<string, number>();
    for (const { parsed } of this.good.values()) {
      switch (parsed.type) {
        case 'shard':
          shards.set(parsed.id, parsed.value);
          break;
        case 'tenant':
          tenants.set(parsed.id, parsed.value);
          break;
        case 'placement':
          placement = parsed.value;
          break;
        case 'breaker':
          if (parsed.scope === 'default') defaults[parsed.setting] = parsed.value;
          else perKind[parsed.scope] = { ...perKind[parsed.scope], [parsed.setting]: parsed.value };
          break;
        case 'scalar':
          scalars.set(parsed.key, parsed.value);
          break;
        case 'weight':
          lbWeights.set(parsed.id, parsed.value);
          break;
        case 'instance':
          instances.set(parsed.id, parsed.value);
          break;
        case 'cacheEpoch':
          cacheEpoch = parsed.value;
          break;
        case 'tenantCacheEpoch':
          tenantEpochs.set(parsed.id, parsed.value);
          break;
        case 'moving':
          moving.set(parsed.id, Date.parse(parsed.value.since));
          break;
      }
    }
    const base = { ...DEFAULT_BREAKER_SETTINGS, ...defaults };
    const breakers = Object.fromEntries(BREAKER_KINDS.map((k) => [k, { ...base, ...perKind[k] }])) as Record<
      BreakerKind,
      BreakerSettings
    >;
    const scalar = <T extends ScalarValue>(key: ScalarKey) => (scalars.get(key) ?? defaultScalar(key)) as T;
    let revision = this.revisionFloor;
    for (const [key, { mod }] of this.raw) if (!isRuntimeKey(key)) revision = Math.max(revision, mod);
    this.revisionFloor = revision;
    return {
      revision,
      shards,
      tenants,
      placement,
      breakers,
      cache: {
        enabled: scalar<boolean>('cache/enabled'),
        ttlSeconds: scalar<number>('cache/ttl_seconds'),
        nearMaxEntries: scalar<number>('cache/near_max_entries'),
        epoch: cacheEpoch,
        tenantEpochs,
      },
      replication: {
        maxLagSeconds: scalar<number>('replication/max_lag_seconds'),
        rywTimeoutMs: scalar<number>('replication/ryw_timeout_ms'),
        maxLatencyMs: scalar<number>('replication/max_latency_ms'),
      },
      mail: { outboxRetentionHours: scalar<number>('mail/outbox_retention_hours') },
      cors: { allowedOrigins: scalar<readonly string[]>(CORS_ORIGINS_KEY) },
      http: {
        allowedHosts: scalar<readonly string[]>(ALLOWED_HOSTS_KEY),
        accessLog: scalar<AccessLogMode>(ACCESS_LOG_KEY),
      },
      lbWeights,
      moving,
      instances,
    };
  }
}
