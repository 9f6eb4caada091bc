/**
 * Whether each shard master holds this build's schema: the number of migrations recorded there
 * (`__drizzle_migrations`, written by `npm run migrate`) against this build's own (its journal,
 * read by the entry: `inBuild`). An instance started on a shard whose schema is behind (a rolling
 * upgrade that skipped `npm run migrate`) stays ready and serves what the old schema allows, but
 * the statements that need a newer column fail: an outside check saw registrations, loans,
 * returns, password changes and every write with an `Idempotency-Key` answer a bare 500 while
 * `/health/ready` said 200 and no line said why.
 *
 * Checked for each shard when it first appears and then every `everyMs`. A shard behind gets an
 * error line naming it and the command to run (again every `warnEveryMs` while it stays so) and
 * `behind(shard)` answers it, which the data path uses to answer such a failure 503
 * `dependency_unavailable` (mysql-errors.ts `toSchemaBehind`); one up to date again gets an info
 * line. `shardgate_shard_schema_migrations_pending{shard}` is the number missing (0 up to date,
 * negative when the shard's schema is newer than this build, absent until known). A shard never
 * migrated (no record) counts all of them. A check that fails (the master down) keeps what the
 * last one found.
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface SchemaBehind {
  applied: number;
  inBuild: number;
}

export interface SchemaWatchOptions {
  /** this build's migration count */
  inBuild: number;
  /** the shards configured now */
  shards: () => readonly string[];
  /** the migrations recorded on the shard's master; 0 when it has no record of any */
  countApplied: (shardId: string) => Promise<number>;
  logger: Logger;
  metrics?: Metrics;
  everyMs?: number;
  warnEveryMs?: number;
  now?: () => number;
}

export class SchemaWatch {
  private readonly applied = new Map<string, number>();
  private readonly warnedAt = new Map<string, number>();
  private readonly checking = new Set<string>();
  private readonly checkedAt = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly everyMs: number;
  private readonly warnEveryMs: number;
  private readonly now: () => number;

  constructor(private readonly options: SchemaWatchOptions) {
    this.everyMs = options.everyMs ?? 30_000;
    this.warnEveryMs = options.warnEveryMs ?? 300_000;
    this.now = options.now ?? (() => performance.now());
    options.metrics?.gauge({
      name: 'shard_schema_migrations_pending',
      help: "migrations of this build not recorded on the shard's master (npm run migrate applies them); negative: the shard's schema is newer than this build",
      labelNames: ['shard'],
      collect: (g) => {
        const shards = new Set(options.shards());
        for (const [shard, applied] of this.applied)
          if (shards.has(shard)) g.set({ shard }, options.inBuild - applied);
      },
    });
  }

  /** checks the shards not checked within `everyMs` now, and so on every second */
  start(): void {
    void this.checkDue();
    this.timer = setInterval(() => void this.checkDue(), 1000);
    (this.timer as { unref?: () => void }).unref?.();
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** the shard's schema as last found, when it is behind this build's */
  behind(shardId: string): SchemaBehind | undefined {
    const applied = this.applied.get(shardId);
    return applied !== undefined && applied < this.options.inBuild
      ? { applied, inBuild: this.options.inBuild }
      : undefined;
  }

  /** one round: every shard due (first seen, or checked over `everyMs` ago) */
  async checkDue(): Promise<void> {
    const shards = new Set(this.options.shards());
    for (const shard of [...this.applied.keys()])
      if (!shards.has(shard)) {
        this.applied.delete(shard);
        this.checkedAt.delete(shard);
        this.warnedAt.delete(shard);
      }
    const at = this.now();
    const due = [...shards].filter(
      (s) =>
        !this.checking.has(s) && at - (this.checkedAt.get(s) ?? Number.NEGATIVE_INFINITY) >= this.everyMs,
    );
    await Promise.all(due.map((s) => this.check(s)));
  }

  private async check(shard: string): Promise<void> {
    this.checking.add(shard);
    this.checkedAt.set(shard, this.now());
    try {
      const applied = await this.options.countApplied(shard);
      const wasBehind = this.behind(shard) !== undefined;
      this.applied.set(shard, applied);
      const { inBuild } = this.options;
      if (applied < inBuild) {
        const last = this.warnedAt.get(shard);
        if (last === undefined || this.now() - last >= this.warnEveryMs) {
          this.warnedAt.set(shard, this.now());
          this.options.logger.error(
            { shard, applied, inBuild },
            `the shard's schema is behind this build (${applied} of its ${inBuild} migrations applied there): statements that need the rest fail with 503 dependency_unavailable; run: npm run migrate -- --shard ${shard}`,
          );
        }
      } else if (wasBehind) {
        this.warnedAt.delete(shard);
        this.options.logger.info({ shard, applied, inBuild }, "the shard's schema is up to date again");
      }
    } catch {
      // the master down or slow: its breaker and probes tell; the last finding stays
    } finally {
      this.checking.delete(shard);
    }
  }
}
