/**
 * A gauge's collect for a value read from every shard at scrape time (the outbox's backlog, its
 * oldest row's wait): `read` of every shard `shardIds` names now, all at once, each given
 * `deadlineMs`. Failure modes: a shard that fails or does not answer in time keeps its last value
 * (a master that hangs does not hold the scrape: it kept the worker's /metrics 3.4 s, an outside
 * check); a shard no longer named loses its series (a review: the API's backlog kept a removed
 * shard's, while the worker's of the same name dropped it).
 */
import { withDeadline } from '../resilience/with-deadline.js';
import type { GaugeHandle } from './metrics.js';

export function lastValuePerShard(
  shardIds: () => readonly string[],
  read: (shardId: string) => Promise<number>,
  deadlineMs: number,
): (g: GaugeHandle) => Promise<void> {
  let last = new Map<string, number>();
  return async (g) => {
    const now = new Map<string, number>();
    await Promise.all(
      shardIds().map(async (id) => {
        try {
          now.set(id, await withDeadline(read(id), deadlineMs, `shard ${id}'s value not read in time`));
        } catch {
          const kept = last.get(id);
          if (kept !== undefined) now.set(id, kept);
        }
      }),
    );
    last = now;
    g.reset();
    for (const [shard, value] of now) g.set({ shard }, value);
  };
}
