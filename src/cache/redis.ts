/**
 * Redis CacheStore on ioredis, configured to fail fast (ARCHITECTURE.md): no offline queue (a
 * command while disconnected fails at once instead of waiting), one retry per request, a command
 * timeout as a backstop under the breaker's `call_timeout_ms`, and a capped reconnect backoff.
 * No auto-pipelining: see the comment at the option. The commands sent in one turn of the event
 * loop still leave in one write (WriteCoalescer).
 * ioredis errors become `DependencyError('redis')` here and nowhere else.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { DependencyError } from '../resilience/errors.js';
import { ABSENT_VERSION_MARK, type CacheStore, type VersionedFill } from './interface.js';
import { logConnectionErrors } from './log-connection-errors.js';
import { type NotConnectedCause, notConnectedCause } from './not-connected-cause.js';
import { RedisKeyTracking } from './redis-key-tracking.js';
import { replaceHungConnection } from './replace-hung-connection.js';
import { WriteCoalescer } from './write-coalescer.js';

/** a read only: an absent version key answers '' and no value (nothing lives under "no version") */
const GET_VERSIONED = `
local v = redis.call('GET', KEYS[1])
if not v then return {'', false} end
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}
`;

/**
 * Stores an entry under the version it was read for, when the version key still holds it: ARGV[1]
 * '' (the key was absent) sets the key to a fresh mark first, if still absent; a key that changed
 * meanwhile (a raise) stores nothing, as its entry could never be read. A mark with less than an
 * entry's TTL left is given its TTL again, after the entry is stored (EXPIRE is no command Redis
 * refuses out of memory, and a script that wrote is no longer checked: the SET must come first),
 * so hot items never written keep their entries, and the key is written (announced to every
 * near cache tracking it) at most once per entry TTL, not at each fill of its family's pages (a
 * review). Answers 1 when stored.
 */
const FILL_VERSIONED = `
local v = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if v then return 0 end
  redis.replicate_commands()
  local t = redis.call('TIME')
  v = '${ABSENT_VERSION_MARK}' .. t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', KEYS[1], v, 'EX', ARGV[6])
  redis.call('SET', ARGV[2] .. v .. ARGV[3], ARGV[4], 'EX', ARGV[5])
  return 1
end
if v ~= ARGV[1] then return 0 end
redis.call('SET', ARGV[2] .. v .. ARGV[3], ARGV[4], 'EX', ARGV[5])
if string.sub(v, 1, 1) == '${ABSENT_VERSION_MARK}' and redis.call('TTL', KEYS[1]) < tonumber(ARGV[5]) then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
end
return 1
`;

/**
 * Same rule as position-merge.ts: MariaDB, per GTID domain the highest seq; MySQL, the union of
 * the two GTID sets (per uuid and tag, intervals sorted and joined; a number of 16 digits or more,
 * past what Lua's doubles hold exactly, or text that is no set: the newer text replaces).
 */
const RAISE_POSITIONS = `
local function mysql_union(texts)
  local sets, keys = {}, {}
  for _, text in ipairs(texts) do
    if string.find(text, '%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d') then return nil end
    for member in string.gmatch(text, '[^,]+') do
      member = string.gsub(member, '%s', '')
      local uuid, key = nil, nil
      for part in string.gmatch(member, '[^:]+') do
        if not uuid then
          if not string.match(part, '^%x+%-%x+%-%x+%-%x+%-%x+$') then return nil end
          uuid = string.lower(part)
          key = uuid
        else
          local s, e = string.match(part, '^(%d+)%-(%d+)$')
          if not s then s = string.match(part, '^(%d+)$'); e = s end
          if s then
            if not sets[key] then sets[key] = {}; table.insert(keys, key) end
            table.insert(sets[key], {tonumber(s), tonumber(e)})
          elseif string.match(part, '^[%a_][%w_]*$') then
            key = uuid .. ':' .. string.lower(part)
          else
            return nil
          end
        end
      end
      if not uuid then return nil end
    end
  end
  table.sort(keys)
  local members = {}
  for _, key in ipairs(keys) do
    local list = sets[key]
    table.sort(list, function(x, y) return x[1] < y[1] end)
    local parts, ls, le = {key}, nil, nil
    for _, iv in ipairs(list) do
      if ls and iv[1] <= le + 1 then
        if iv[2] > le then le = iv[2] end
      else
        if ls then table.insert(parts, ls == le and string.format('%d', ls) or string.format('%d-%d', ls, le)) end
        ls, le = iv[1], iv[2]
      end
    end
    table.insert(parts, ls == le and string.format('%d', ls) or string.format('%d-%d', ls, le))
    table.insert(members, table.concat(parts, ':'))
  end
  return table.concat(members, ',')
end

for _, key in ipairs(KEYS) do
  local cur = redis.call('GET', key)
  if cur and string.sub(cur, 1, 1) == '${ABSENT_VERSION_MARK}' then cur = nil end
  local nextpos = ARGV[2]
  if cur and ARGV[1] == 'mariadb' then
    local best, order = {}, {}
    for _, text in ipairs({cur, ARGV[2]}) do
      for d, srv, n in string.gmatch(text, '(%d+)%-(%d+)%-(%d+)') do
        local have = best[d]
        if not have then table.insert(order, tonumber(d)) end
        if not have or tonumber(n) > tonumber(have[2]) then best[d] = {srv, n} end
      end
    end
    table.sort(order)
    local parts = {}
    for _, d in ipairs(order) do
      local e = best[tostring(d)]
      table.insert(parts, d .. '-' .. e[1] .. '-' .. e[2])
    end
    nextpos = table.concat(parts, ',')
  elseif cur and cur ~= '' and ARGV[1] == 'mysql' then
    nextpos = mysql_union({cur, ARGV[2]}) or ARGV[2]
  end
  redis.call('SET', key, nextpos, 'EX', ARGV[3])
end
return #KEYS
`;

/**
 * The client settings of every command connection to Redis (this store's, the login
 * throttle's): a command while disconnected fails at once, one retry per request, `commandTimeoutMs`
 * as a backstop under the breaker's `call_timeout_ms`, a capped reconnect backoff.
 */
export function failFastRedisOptions({
  commandTimeoutMs = 1000,
  reconnectAtOnce = () => false,
}: {
  commandTimeoutMs?: number;
  /** whether a connection dropping now is opened again at once (NotConnectedCause.reconnectAtOnce) */
  reconnectAtOnce?: () => boolean;
} = {}): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 1000,
    // a connection ended (replace-hung-connection.ts) on a dead path gets no answer to its FIN:
    // destroyed after this long instead of ioredis's 2 s, in which every command fails at once
    disconnectTimeout: 200,
    // at once after the drop of a connection that was steady (commands meanwhile are refused:
    // not-connected-cause.ts), else and then backing off
    retryStrategy: (times) => (times === 1 && reconnectAtOnce() ? 0 : Math.min(50 * 2 ** times, 2000)),
    lazyConnect: false,
    // Off on purpose: ioredis 5's Pipeline objects (auto-pipelining, and `pipeline()` too) kept
    // each command, its reply and the awaiting request alive across young-generation GCs. On one
    // instance at 1,750 cached reads/s: ~4 MB promoted per scavenge and ~10 ms pauses with it,
    // ~0.3 MB and ~2 ms without. The CPU per read is the same either way (Redis ~5 µs more, the
    // instance ~5 µs less). bench/ROUNDS.md, "Auto-pipelining off".
    enableAutoPipelining: false,
  };
}

export interface RedisCacheStoreOptions {
  url: string;
  /** hard ceiling per command; the breaker's call_timeout_ms normally abandons the call first */
  commandTimeoutMs?: number;
  /** for the near cache's invalidation tracking (connection lost / live again) */
  logger?: Logger;
  /**
   * each time the connection is ready (handshake done), the first time included: the caller
   * tells the cache's breaker (CircuitBreaker.connectionRestored), so a cache back after a blip
   * is tried after 1 s rather than after the breaker's whole reset time
   */
  onReady?: () => void;
}

export class RedisCacheStore implements CacheStore {
  private readonly redis: Redis;
  /** a command refused while not connected says why (not-connected-cause.ts) */
  private readonly withCause: NotConnectedCause;
  /** invalidations of the keys read on this store's connection, for the near cache */
  readonly tracking: RedisKeyTracking;
  /** one write per event-loop turn instead of one per command: on 2 cores, cached reads +14–16 %,
   *  Redis CPU per read 0.018 → 0.011 ms (bench/ROUNDS.md, "one write per turn to Redis") */
  private readonly coalescer = new WriteCoalescer(() =>
    this.redis.status === 'ready' ? this.redis.stream : undefined,
  );

  constructor({ url, commandTimeoutMs = 1000, logger, onReady }: RedisCacheStoreOptions) {
    let cause: NotConnectedCause | undefined;
    this.redis = new Redis(
      url,
      failFastRedisOptions({ commandTimeoutMs, reconnectAtOnce: () => cause?.reconnectAtOnce() ?? false }),
    );
    this.withCause = cause = notConnectedCause(this.redis);
    if (onReady) this.redis.on('ready', onReady);
    // connection errors surface on the commands too; logged, at most one line per 30 s
    logConnectionErrors(this.redis, logger, 'cache');
    replaceHungConnection(this.redis, {
      onReplace: () => {
        // this process's own drop: no grace (the timeouts that led here counted)
        this.withCause.forgoNextGrace();
        logger?.warn({ connection: 'cache' }, 'redis answered nothing on a connection in time: replacing it');
      },
    });
    this.redis.defineCommand('getVersioned', { numberOfKeys: 1, lua: GET_VERSIONED });
    this.redis.defineCommand('fillVersioned', { numberOfKeys: 1, lua: FILL_VERSIONED });
    // numberOfKeys is given per call (the first argument) for a variable number of keys
    this.redis.defineCommand('raisePositions', { lua: RAISE_POSITIONS });
    this.tracking = new RedisKeyTracking(this.redis, { logger });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    // ioredis writes a command synchronously when connected: cork before it does
    this.coalescer.beforeWrite();
    try {
      return await fn();
    } catch (caught) {
      const error = this.withCause(caught);
      throw new DependencyError('redis', `redis: ${(error as Error).message}`, {
        cause: error,
        // refused while reconnecting after a drop: counted for neither side (not-connected-cause.ts)
        busy: error instanceof DependencyError && error.busy,
      });
    }
  }

  get(key: string) {
    return this.call(async () => (await this.redis.get(key)) ?? undefined);
  }

  getVersioned(counterKey: string, prefix: string, suffix: string) {
    return this.call(async () => {
      const answer = await (
        this.redis as unknown as {
          getVersioned(k: string, p: string, s: string): Promise<[string, string | null] | null>;
        }
      ).getVersioned(counterKey, prefix, suffix);
      if (!Array.isArray(answer)) throw new Error('getVersioned: no answer of the script');
      return { version: answer[0], value: answer[1] ?? undefined };
    });
  }

  fillVersioned({ versionKey, version, prefix, suffix, value, ttlSeconds, markTtlSeconds }: VersionedFill) {
    return this.call(async () => {
      const stored = await (
        this.redis as unknown as {
          fillVersioned(k: string, ...args: (string | number)[]): Promise<number>;
        }
      ).fillVersioned(versionKey, version, prefix, suffix, value, ttlSeconds, markTtlSeconds);
      return stored === 1;
    });
  }

  set(key: string, value: string, ttlSeconds: number) {
    return this.call(async () => {
      await this.redis.set(key, value, 'EX', ttlSeconds);
    });
  }

  del(keys: string[]) {
    return this.call(async () => {
      if (keys.length > 0) await this.redis.del(...keys);
    });
  }

  raisePositions(
    keys: readonly string[],
    flavour: 'mariadb' | 'mysql',
    position: string,
    ttlSeconds: number,
  ) {
    return this.call(async () => {
      if (keys.length === 0) return;
      await (
        this.redis as unknown as {
          raisePositions(n: number, ...args: (string | number)[]): Promise<number>;
        }
      ).raisePositions(keys.length, ...keys, flavour, position, ttlSeconds);
    });
  }

  async deleteMatching(pattern: string) {
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await this.call(() => this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000));
      cursor = next;
      if (keys.length > 0) removed += await this.call(() => this.redis.unlink(...keys));
    } while (cursor !== '0');
    return removed;
  }

  async close() {
    this.tracking.close();
    this.redis.disconnect();
  }
}
