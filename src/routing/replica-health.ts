/**
 * Admission of one replica to the read rotation, with hysteresis so a replica whose lag hovers
 * around the limit does not flap: it is excluded as soon as its lag exceeds `max_lag_seconds` (or
 * a probe fails), and re-admitted only after `readmitProbes` consecutive probes below half the
 * limit. A replica never probed yet is admitted by its first probe below half the limit.
 *
 * A lag known only as a lower bound (`atLeast`: the replica lacks the oldest master position the
 * timeline knows, see master-timeline.ts) admits nothing: past the limit it excludes like any lag
 * over it; within the limit the lag is unknown — an admitted or never-judged replica goes (back)
 * to `unknown`, not read from, and is admitted by its first exact probe below half the limit; an
 * excluded one stays excluded and its re-admission streak restarts.
 *
 * A probe judged slow (`slow`: its round trip over `replication/max_latency_ms` and its master's,
 * shard-router.ts) counts as no good probe: an admitted replica is excluded at the
 * SLOW_PROBES_TO_EXCLUDE-th slow probe in a row (one slow probe, a hiccup, is let pass), and an
 * excluded one is re-admitted only after `readmitProbes` probes in a row that are fast and within
 * the lag. Before, a replica 100 ms away each way stayed admitted (its lag is small) while most
 * reads waiting for a consistency position on it ran out of their budget and went to the master
 * 300 ms late; one 300 ms away was excluded by such reads and re-admitted by its probes every
 * 3.5–4 s (an outside check).
 */

/**
 * Why a replica is not admitted now, as a word a metric can carry (`replica_excluded{cause}`):
 * - `lag`: its lag over `max_lag_seconds`, or over half of it while excluded;
 * - `readmitting`: within half the limit (and fast), waiting for `readmitProbes` good probes;
 * - `lag_unknown`: behind the oldest master position this instance knows (`atLeast`);
 * - `slow`: its probes' round trips over `replication/max_latency_ms` and its master's;
 * - `unreachable`: a probe or a read failed (refused, timed out, no answer);
 * - `read_timeout`: a read waited past its budget for it (it answers, too slowly for reads);
 * - `replication_stopped`: its IO or SQL thread stopped on an error (replication-stopped.ts);
 * - `ahead_of_master`: it holds transactions its master does not (another master, a direct write);
 * - `not_probed`: no probe judged it yet.
 */
export type ReplicaCause =
  | 'lag'
  | 'readmitting'
  | 'lag_unknown'
  | 'slow'
  | 'unreachable'
  | 'read_timeout'
  | 'replication_stopped'
  | 'ahead_of_master'
  | 'not_probed';

/** slow probes in a row that exclude an admitted replica */
export const SLOW_PROBES_TO_EXCLUDE = 2;
export type ReplicaState = 'unknown' | 'admitted' | 'excluded';

export class ReplicaHealth {
  private stateValue: ReplicaState = 'unknown';
  private goodStreak = 0;
  private slowStreak = 0;
  private lag = Number.POSITIVE_INFINITY;
  private error: string | undefined;
  private causeValue: ReplicaCause = 'not_probed';
  private readonly readmitProbes: number;

  constructor({ readmitProbes = 2 }: { readmitProbes?: number } = {}) {
    this.readmitProbes = readmitProbes;
  }

  get state(): ReplicaState {
    return this.stateValue;
  }

  get admitted(): boolean {
    return this.stateValue === 'admitted';
  }

  /** last measured lag in seconds (Infinity when the last probe failed, none ran, or it is unknown) */
  get lagSeconds(): number {
    return this.lag;
  }

  get lastError(): string | undefined {
    return this.error;
  }

  /** why it is not admitted now (ReplicaCause); undefined while admitted */
  get cause(): ReplicaCause | undefined {
    return this.stateValue === 'admitted' ? undefined : this.causeValue;
  }

  observe(
    lagSeconds: number,
    maxLagSeconds: number,
    {
      atLeast = false,
      slow,
      unjudged = false,
      note,
    }: {
      atLeast?: boolean;
      slow?: string;
      unjudged?: boolean;
      /** why it may lag, shown as `lastError` while the lag excludes it (threads stopped by hand) */
      note?: string;
    } = {},
  ): void {
    this.lag = lagSeconds;
    this.error = undefined;
    if (lagSeconds > maxLagSeconds) {
      this.exclude('lag');
      if (note) this.error = note;
      return;
    }
    if (slow) {
      this.slowStreak += 1;
      this.error = slow;
      this.causeValue = 'slow';
      this.goodStreak = 0;
      // a replica not (yet) excluded is let one slow probe pass, a never-judged one too: an
      // instance is busiest at its start
      if (this.stateValue !== 'excluded' && this.slowStreak < SLOW_PROBES_TO_EXCLUDE) return;
      this.exclude('slow');
      return;
    }
    // over the limit in a round whose master probe gave nothing to compare with: this round says
    // nothing of its latency, so neither latency streak moves, nor does it count towards a
    // re-admission (before, it counted as a fast probe: a far replica was re-admitted through a
    // master outage, a review); the lag rules below still apply
    if (!unjudged) this.slowStreak = 0;
    if (atLeast) {
      this.lag = Number.POSITIVE_INFINITY;
      this.error = `lag unknown: at least ${lagSeconds} s (behind the oldest master position this instance knows)`;
      this.goodStreak = 0;
      this.causeValue = 'lag_unknown';
      if (this.stateValue === 'admitted') this.stateValue = 'unknown';
      return;
    }
    if (this.stateValue === 'admitted') return;
    if (lagSeconds <= maxLagSeconds / 2) {
      // within the lag again: what excluded it is over, whatever it was
      if (this.stateValue === 'excluded') this.causeValue = 'readmitting';
      if (!unjudged) {
        this.goodStreak += 1;
        if (this.stateValue === 'unknown' || this.goodStreak >= this.readmitProbes)
          this.stateValue = 'admitted';
        else this.causeValue = 'readmitting';
      }
    } else {
      this.exclude('lag');
    }
    // still kept out by its lag (over max/2 on its way back, or readmitting): stopped by hand,
    // it will not catch up, and says so (a review: only a lag over the max showed the note)
    if (note && this.stateValue !== 'admitted') this.error = note;
  }

  /** excluded at once: `reason` says it in words (`lastError`), `cause` as a word */
  fail(
    reason: string,
    cause: 'unreachable' | 'read_timeout' | 'replication_stopped' | 'ahead_of_master' = 'unreachable',
  ): void {
    this.lag = Number.POSITIVE_INFINITY;
    this.error = reason;
    this.exclude(cause);
  }

  private exclude(cause: ReplicaCause): void {
    this.stateValue = 'excluded';
    this.causeValue = cause;
    this.goodStreak = 0;
  }
}
