/**
 * Retiring every cached entry at once, for the writes whose invalidation Redis refused.
 *
 * A version raise that cannot reach Redis is kept in the writer's memory (pending-raises.ts) and
 * lands once Redis answers that instance again. Until then the entries it should retire are still
 * in Redis, and another instance that reaches Redis first serves them to readers without a
 * consistency token; if the writer dies first, they are served until they expire. So the writer
 * also moves the cache epoch (`runtime/cache_epoch` in etcd, schema.ts): every instance follows it
 * within milliseconds through its config watch, and no entry filled under another epoch is served
 * (read-cache.ts). The price is a cold cache after an outage in which something was written.
 *
 * Contract of `retire()`: resolves once a move of the epoch that STARTED after the call has been
 * written (an entry filled before the caller's write committed then carries an older epoch), or
 * has failed; never rejects. Calls while a move is in flight share the one move that follows it,
 * so a burst of failed invalidations costs at most two etcd writes in a row, not one each.
 *
 * Failure mode: etcd unreachable too — the move fails (`onError`, after the client's call deadline),
 * and the entries stay readable for readers without a token until the raise lands or they expire
 * (`cache/ttl_seconds`), as before this existed.
 */
import { randomInt } from 'node:crypto';

/** writes a new value of the epoch; rejects when it could not */
export type EpochWrite = (value: number) => Promise<void>;

/** a fresh epoch: the time in µs plus a random part, so two instances never write the same one */
export function nextEpoch(nowMs = Date.now()): number {
  return nowMs * 1000 + randomInt(1000);
}

export class CacheEpochRetirer {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;

  constructor(
    private readonly write: EpochWrite,
    private readonly onError: (error: unknown) => void,
  ) {}

  retire(): Promise<void> {
    if (!this.running) return this.start();
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<void> {
    const run = this.write(nextEpoch())
      .catch((error: unknown) => {
        this.onError(error);
      })
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
    return run;
  }
}
