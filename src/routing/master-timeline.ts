/**
 * Replication lag from GTIDs, independent of `Seconds_Behind_Master` — which is NULL as soon as
 * either replication thread is stopped (`STOP SLAVE SQL_THREAD`) and needs privileges the
 * application user may not have.
 *
 * The prober samples the master's position about once a second and records each new one with
 * the time it was seen. A replica's lag is `now − (time of the oldest sample it has not applied)`,
 * or 0 when it has applied them all. So a replica whose SQL thread is stopped shows a lag that
 * grows from the first write it missed, and one that is idle with an idle master shows 0 (it has
 * the same data). The estimate lags reality by at most one probe interval.
 *
 * Bounded: at most `maxSamples` samples are kept. When one more comes, the two oldest merge into
 * one with the older time and the newer position, so the oldest time a replica may not have
 * applied is never lost: a replica stopped for hours shows hours of lag, whatever
 * `max_lag_seconds` is (up to its 86400). A replica part-way through a merged span shows the
 * span's start, an overestimate — it stays excluded until it has passed the span.
 */
import { type GtidPosition, gtidContains } from './gtid.js';

interface Sample {
  at: number;
  position: GtidPosition;
}

export class MasterTimeline {
  private samples: Sample[] = [];

  constructor(private readonly maxSamples = 900) {}

  get size(): number {
    return this.samples.length;
  }

  record(position: GtidPosition, at: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && gtidContains(last.position, position)) return;
    this.samples.push({ at, position });
    if (this.samples.length > this.maxSamples) {
      const [oldest, next] = this.samples as [Sample, Sample];
      this.samples.splice(0, 2, { at: oldest.at, position: next.position });
    }
  }

  lagSeconds(replica: GtidPosition, now: number): number {
    for (const sample of this.samples) {
      if (!gtidContains(replica, sample.position)) return Math.max(0, (now - sample.at) / 1000);
    }
    return 0;
  }

  /** Forget samples every listed replica has applied (the newest is always kept). */
  prune(applied: GtidPosition[]): void {
    if (applied.length === 0) return;
    while (this.samples.length > 1 && applied.every((p) => gtidContains(p, this.samples[0]!.position))) {
      this.samples.shift();
    }
  }
}
