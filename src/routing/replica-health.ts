/**
 * Admission of one replica to the read rotation, with hysteresis so a replica whose lag hovers
 * around the limit does not flap: it is excluded as soon as its lag exceeds `max_lag_seconds` (or
 * a probe fails), and re-admitted only after `readmitProbes` consecutive probes below half the
 * limit. A replica never probed yet is admitted by its first probe below half the limit.
 */
export type ReplicaState = 'unknown' | 'admitted' | 'excluded';

export class ReplicaHealth {
  private stateValue: ReplicaState = 'unknown';
  private goodStreak = 0;
  private lag = Number.POSITIVE_INFINITY;
  private error: string | undefined;
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

  /** last measured lag in seconds (Infinity when the last probe failed or none ran) */
  get lagSeconds(): number {
    return this.lag;
  }

  get lastError(): string | undefined {
    return this.error;
  }

  observe(lagSeconds: number, maxLagSeconds: number): void {
    this.lag = lagSeconds;
    this.error = undefined;
    if (lagSeconds > maxLagSeconds) {
      this.exclude();
      return;
    }
    if (this.stateValue === 'admitted') return;
    if (lagSeconds <= maxLagSeconds / 2) {
      this.goodStreak += 1;
      if (this.stateValue === 'unknown' || this.goodStreak >= this.readmitProbes)
        this.stateValue = 'admitted';
    } else {
      this.exclude();
    }
  }

  fail(reason: string): void {
    this.lag = Number.POSITIVE_INFINITY;
    this.error = reason;
    this.exclude();
  }

  private exclude(): void {
    this.stateValue = 'excluded';
    this.goodStreak = 0;
  }
}
