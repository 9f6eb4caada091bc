/**
 * Redis CacheStore on ioredis, configured to fail fast (ARCHITECTURE.md): no offline queue (a
 * command while disconnected fails at once instead of waiting), one retry per request, a command
 * timeout as a backstop under the breaker's `call_timeout_ms`, and a capped reconnect backoff.
 * ioredis errors become `DependencyError('redis')` here and nowhere else.
 */
import { Redis } from 'ioredis';
import { DependencyError } from '../resilience/errors.js';
import type { CacheStore } from './interface.js';

const GET_VERSIONED = `
local v = redis.call('GET', KEYS[1]) or ''
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}
`;

/** Same rule as position-merge.ts: per GTID domain keep the highest seq; mysql: replace. */
const RAISE_POSITION = `
local cur = redis.call('GET', KEYS[1])
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
end
redis.call('SET', KEYS[1], nextpos, 'EX', ARGV[3])
return nextpos
`;

export interface RedisCacheStoreOptions {
  url: string;
  /** hard ceiling per command; the breaker's call_timeout_ms normally abandons the call first */
  commandTimeoutMs?: number;
}

export class RedisCacheStore implements CacheStore {
  private readonly redis: Redis;

  constructor({ url, commandTimeoutMs = 1000 }: RedisCacheStoreOptions) {
    this.redis = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 1000,
      retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      lazyConnect: false,
    });
    // connection errors surface on the commands; do not crash on the emitter
    this.redis.on('error', () => {});
    this.redis.defineCommand('getVersioned', { numberOfKeys: 1, lua: GET_VERSIONED });
    this.redis.defineCommand('raisePosition', { numberOfKeys: 1, lua: RAISE_POSITION });
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      throw new DependencyError('redis', `redis: ${(error as Error).message}`, { cause: error });
    }
  }

  get(key: string) {
    return this.call(async () => (await this.redis.get(key)) ?? undefined);
  }

  getVersioned(counterKey: string, prefix: string, suffix: string) {
    return this.call(async () => {
      const [v, value] = (await (
        this.redis as unknown as {
          getVersioned(k: string, p: string, s: string): Promise<[string, string | null]>;
        }
      ).getVersioned(counterKey, prefix, suffix)) ?? ['', null];
      return { version: v, value: value ?? undefined };
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

  raisePosition(key: string, flavour: 'mariadb' | 'mysql', position: string, ttlSeconds: number) {
    return this.call(async () => {
      await (
        this.redis as unknown as {
          raisePosition(k: string, f: string, p: string, ttl: number): Promise<string>;
        }
      ).raisePosition(key, flavour, position, ttlSeconds);
    });
  }

  async close() {
    this.redis.disconnect();
  }
}
