/**
 * Whether each shard master holds this build's schema: the migrations recorded there
 * (`__drizzle_migrations`, written by `npm run migrate`) against this build's journal (read by
 * the entry), as drizzle judges them (pending-migrations.ts). An instance started on a shard whose schema is behind (a rolling
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
 * minus the number of newer ones when the shard's schema is newer than this build (one warning
 * line then: a column an older build still names may be gone), absent until known). A shard
 * never migrated (no record) counts all of them. A check that fails (the master down) keeps what
 * the last one found.
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { type JournalEntry, type MigrationsFound, pendingMigrations } from './pending-migrations.js';

export interface SchemaBehind {
  /** how many of this build's migrations are not recorded there */
  pending: number;
  /** the first of them */
  first: string;
  inBuild: number;
}

export interface SchemaWatchOptions {
  /** this build's migrations */
  journal: readonly JournalEntry[];
  /** the shards configured now */
  shards: () => readonly string[];
  /** what the shard's master recorded of the migrations applied there (none: never migrated) */
  recorded: (shardId: string) => Promise<number[]>;
  logger: Logger;
  metrics?: Metrics;
  everyMs?: number;
  warnEveryMs?: number;
  now?: () => number;
}

export class SchemaWatch {
  private readonly found = new Map<string, MigrationsFound>();
  private readonly warnedNewer = new Set<string>();
  private readonly warnedSkipped = new Set<string>();
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
        for (const [shard, { pending, newer }] of this.found)
          if (shards.has(shard)) g.set({ shard }, pending.length > 0 ? pending.length : -newer);
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
    const pending = this.found.get(shardId)?.pending;
    return pending && pending.length > 0
      ? { pending: pending.length, first: pending[0]!.tag, inBuild: this.options.journal.length }
      : undefined;
  }

  /** one round: every shard due (first seen, or checked over `everyMs` ago) */
  async checkDue(): Promise<void> {
    const shards = new Set(this.options.shards());
    for (const shard of [...this.found.keys()])
      if (!shards.has(shard)) {
        this.found.delete(shard);
        this.checkedAt.delete(shard);
        this.warnedAt.delete(shard);
        this.warnedNewer.delete(shard);
        this.warnedSkipped.delete(shard);
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
      const found = pendingMigrations(this.options.journal, await this.options.recorded(shard));
      const wasBehind = this.behind(shard) !== undefined;
      this.found.set(shard, found);
      const behind = this.behind(shard);
      if (behind) {
        const last = this.warnedAt.get(shard);
        if (last === undefined || this.now() - last >= this.warnEveryMs) {
          this.warnedAt.set(shard, this.now());
          this.options.logger.error(
            { shard, pending: behind.pending, first: behind.first, inBuild: behind.inBuild },
            `the shard's schema is behind this build (${behind.pending} of its ${behind.inBuild} migrations not applied there, the first ${behind.first}): statements that need them fail with 503 dependency_unavailable; run: npm run migrate -- --shard ${shard}`,
          );
        }
      } else if (wasBehind) {
        this.warnedAt.delete(shard);
        this.options.logger.info({ shard }, "the shard's schema is up to date again");
      }
      // older than the last recorded and not recorded: migrate never applies them (a gap)
      if (found.skipped.length > 0 && !this.warnedSkipped.has(shard)) {
        this.warnedSkipped.add(shard);
        this.options.logger.error(
          { shard, skipped: found.skipped.map((e) => e.tag) },
          `the shard's schema lacks migrations that npm run migrate will not apply (${found.skipped.map((e) => e.tag).join(', ')}: not recorded, older than the last recorded): apply and record them by hand (docs/operations.md, "A migration that failed part-way")`,
        );
      }
      if (found.newer > 0 && !this.warnedNewer.has(shard)) {
        this.warnedNewer.add(shard);
        this.options.logger.warn(
          { shard, newer: found.newer },
          `the shard's schema is newer than this build (${found.newer} migration(s) it does not know recorded there): fine while the newer build only added to it; upgrade this instance`,
        );
      }
    } catch {
      // the master down or slow: its breaker and probes tell; the last finding stays
    } finally {
      this.checking.delete(shard);
    }
  }
}
