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
 * Bounded: at most `maxSamples` samples are kept (the oldest dropped first — a replica behind
 * all of them still shows a lag of at least that many probe intervals).
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
    if (this.samples.length > this.maxSamples) this.samples.shift();
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
