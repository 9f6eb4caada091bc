/**
 * Replication lag from GTIDs, independent of `Seconds_Behind_Master` — which is NULL as soon as
 * either replication thread is stopped (`STOP SLAVE SQL_THREAD`) and needs privileges the
 * application user may not have.
 *
 * The prober samples the master's position about once a second and records each new one with
 * the time it was seen (the router's clock: monotonic, so a step of the wall clock is no lag;
 * the samples never leave the process). A replica's lag is `now − (time of the oldest sample it has not applied)`,
 * or 0 when it has applied them all. So a replica whose SQL thread is stopped shows a lag that
 * grows from the first write it missed, and one that is idle with an idle master shows 0 (it has
 * the same data). The estimate lags reality by at most one probe interval.
 *
 * Only a lower bound behind the oldest sample (`atLeast`). The timeline knows nothing older than
 * its first sample: the first position seen since it was created (instance start, a new master)
 * or the one kept by `prune`. A replica that lacks it lacks a write the master had at that
 * sample's time, so its lag is at least `now − that time` — and may be hours more. Such a lag
 * says "unknown" while it is within `max_lag_seconds` and "over the limit" once it is past it:
 * admission (replica-health.ts) must not read it as exact. An empty timeline (the master never
 * answered yet) bounds nothing: `{ seconds: 0, atLeast: true }`.
 *
 * Invariant that keeps every other lag exact: the first sample is never merged away or pruned
 * past a replica that has applied it. `prune` keeps the newest sample every listed replica has
 * applied as the first one, so a listed replica that stalls afterwards still contains the first
 * sample and its lag is measured from the next one, exactly. A replica not listed at the prune
 * (added since, or never probed) may lack it and gets the lower bound, as it should.
 *
 * Bounded: at most `maxSamples` (≥ 2) samples are kept. When one more comes, the two oldest after
 * the first merge into one with the older time and the newer position, so the oldest time a
 * replica may not have applied is never lost: a replica stopped for hours shows hours of lag,
 * whatever `max_lag_seconds` is (up to its 86400). A replica part-way through a merged span shows
 * the span's start, an overestimate — it stays excluded until it has passed the span.
 */
import { type GtidPosition, gtidContains } from './gtid.js';

interface Sample {
  at: number;
  position: GtidPosition;
}

export interface ReplicaLag {
  /** seconds behind the master; only a lower bound when `atLeast` */
  seconds: number;
  /** the replica lacks the oldest sample known: its lag is `seconds` or more, how much more is unknown */
  atLeast: boolean;
}

export class MasterTimeline {
  private samples: Sample[] = [];
  private readonly maxSamples: number;

  /**
   * `before`: the last position of the shard's previous master (a master change), which the new
   * master's first position is compared with as with a last sample
   */
  constructor(
    maxSamples = 900,
    private before?: GtidPosition,
  ) {
    this.maxSamples = Math.max(2, maxSamples);
  }

  get size(): number {
    return this.samples.length;
  }

  /**
   * Records the master's position seen at `at`. A master's positions only grow: one that does not
   * contain the last sample (or, on an empty timeline, the `before` it was created with) means
   * the master's history went back — `RESET MASTER`, a restore from a backup, a new master that
   * lacks the last writes of the old one. The timeline then restarts from it (the older samples
   * would show a replica that follows the new history as lagging, growing, until the sequence
   * numbers passed the old ones: ~4 minutes excluded in an outside check) and the position it
   * went back from is returned; otherwise undefined.
   */
  record(position: GtidPosition, at: number): GtidPosition | undefined {
    const last = this.samples[this.samples.length - 1];
    const previous = last?.position ?? this.before;
    if (previous && !gtidContains(position, previous)) {
      this.samples = [{ at, position }];
      this.before = undefined;
      return previous;
    }
    this.before = undefined;
    if (last && gtidContains(last.position, position)) return undefined;
    this.samples.push({ at, position });
    if (this.samples.length > this.maxSamples) {
      const [, older, newer] = this.samples as [Sample, Sample, Sample];
      this.samples.splice(1, 2, { at: older.at, position: newer.position });
    }
    return undefined;
  }

  /** the newest position recorded, if any */
  get last(): GtidPosition | undefined {
    return this.samples[this.samples.length - 1]?.position;
  }

  /**
   * `forgiveFrom`: the newest sample is not required when it was recorded at or after this time
   * (while the master does not answer, from shortly before it stopped: a crash may have cut its
   * last transactions from its binlog, so no replica will ever receive them). An older newest
   * sample is required as ever (it was in the binlog for longer: a replica stopped before it is
   * behind, not cut off: a review), and so is any earlier one, on the clock. The first sample
   * (the lower bound) is never forgiven.
   */
  lag(replica: GtidPosition, now: number, { forgiveFrom }: { forgiveFrom?: number } = {}): ReplicaLag {
    const age = (sample: Sample) => Math.max(0, (now - sample.at) / 1000);
    const [first, ...rest] = this.samples;
    if (!first) return { seconds: 0, atLeast: true };
    const newest = rest[rest.length - 1];
    const required =
      forgiveFrom !== undefined && newest !== undefined && newest.at >= forgiveFrom
        ? rest.slice(0, -1)
        : rest;
    if (!gtidContains(replica, first.position)) return { seconds: age(first), atLeast: true };
    for (const sample of required) {
      if (!gtidContains(replica, sample.position)) return { seconds: age(sample), atLeast: false };
    }
    return { seconds: 0, atLeast: false };
  }

  /**
   * Forget the samples before the newest one every listed replica has applied; that one stays
   * first (see the invariant above). `applied` lists the last known position of every replica
   * that has one.
   */
  prune(applied: GtidPosition[]): void {
    if (applied.length === 0) return;
    while (this.samples.length > 1 && applied.every((p) => gtidContains(p, this.samples[1]!.position))) {
      this.samples.shift();
    }
  }
}
