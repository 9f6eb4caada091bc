/**
 * Cache-aside for the hot reads of the library API (GET book, GET book pages, GET /members/me),
 * through `services.cache` (src/cache/read-cache.ts: tenant-namespaced, invalidated by the
 * replication position of each write, never staler than the caller's consistency token).
 * Only successful answers are cached (and of those only what `keepIf` says of where they were
 * read from), as the JSON the route returns. Sets `X-Cache` and
 * `X-Read-From` (on a HIT: where the entry was read from).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ReadOptions, ReadOutcome, ReadSource, ReplicationPosition } from '../domain/data-access.js';
import type { Failure, Result } from '../domain/result.js';
import { setHeader } from '../http/response-headers.js';
import { CACHE_HEADER } from './outcome-headers.js';
import { failureProblem, markRead, markWritten } from './respond.js';

/** `keep`: false for a value that answers this caller but is not to be stored (`keepIf`) */
type Cached<J> = { ok: true; json: J; keep: boolean } | { ok: false; failure: Failure };

export interface CacheKeys {
  /** what a write invalidates: `book:<id>`, `books`, `member:<id>` */
  version: string;
  /** the entry under that version */
  entry: string;
}

export async function cachedRead<T, J>(
  c: Context<AppEnv>,
  keys: CacheKeys,
  load: (options: ReadOptions) => Promise<ReadOutcome<Result<T>>>,
  toJson: (value: T) => J,
  { keepIf = () => true }: { keepIf?: (readFrom: ReadSource) => boolean } = {},
): Promise<J> {
  const tenant = c.get('tenant');
  const token = c.get('readPosition');
  const r = await c.get('services').cache.read<Cached<J>>({
    target: { tenantId: tenant.id, version: keys.version, entry: keys.entry },
    shardId: tenant.shardId,
    token,
    cacheable: (v) => v.ok && v.keep,
    load: async (floor) => {
      const out = await load(floor ? { position: floor } : {});
      const value: Cached<J> = out.value.ok
        ? { ok: true, json: toJson(out.value.value), keep: keepIf(out.readFrom) }
        : { ok: false, failure: out.value };
      return { value, readFrom: out.readFrom };
    },
  });
  setHeader(c, CACHE_HEADER, r.cache);
  markRead(c, r.readFrom);
  if (!r.value.ok) throw failureProblem(r.value.failure);
  return r.value.json;
}

/**
 * After a committed write: answer its consistency token and raise the cache versions of what it
 * changed (before the response, so the caller's next read cannot meet an older entry).
 */
export async function markWrittenAndInvalidate(
  c: Context<AppEnv>,
  position: ReplicationPosition | undefined,
  versions: string[],
): Promise<void> {
  await markWritten(c, position);
  await c.get('services').cache.invalidate(c.get('tenant').id, versions, position);
}

export const bookVersions = (bookId: string) => [`book:${bookId}`, 'books'];
