/**
 * Which of a build's migrations a database lacks, judged as drizzle's migrator judges it: it reads
 * the latest `created_at` recorded (each migration's journal `when`) and applies every journal
 * entry newer than it (drizzle-orm mysql-core dialect.js `migrate`). A count of records was wrong
 * both ways: a migration recorded twice (a repair done twice) read as up to date while one was
 * missing (a review). Runtime-neutral: the journal is read by the caller (migrations-folder.ts).
 */

/** a journal entry: its tag (`0007_outbox_dead_lettered_at`) and its `when`, what drizzle records */
export interface JournalEntry {
  tag: string;
  when: number;
}

export interface MigrationsFound {
  /** the build's migrations `npm run migrate` applies there (newer than the last recorded), in order */
  pending: JournalEntry[];
  /**
   * the build's migrations not recorded there but older than the last recorded: `migrate` never
   * applies them (a gap left by a repair by hand, or a journal merged out of order)
   */
  skipped: JournalEntry[];
  /** records of migrations this build does not know, newer than its last (a newer build's) */
  newer: number;
}

export function pendingMigrations(
  journal: readonly JournalEntry[],
  recorded: readonly number[],
): MigrationsFound {
  const there = new Set(recorded);
  const lastRecorded = Math.max(Number.NEGATIVE_INFINITY, ...recorded);
  const lastInBuild = Math.max(Number.NEGATIVE_INFINITY, ...journal.map((e) => e.when));
  return {
    pending: journal.filter((e) => e.when > lastRecorded),
    skipped: journal.filter((e) => e.when <= lastRecorded && !there.has(e.when)),
    newer: new Set(recorded.filter((at) => at > lastInBuild)).size,
  };
}
