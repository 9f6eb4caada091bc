/**
 * Which of a build's migrations a database lacks, judged as drizzle's migrator judges it: by the
 * `created_at` it records for each (the journal entry's `when`), not by a count of records (two
 * records of one migration, a repair done twice, made a count read "up to date" while one was
 * missing: a review). Runtime-neutral: the journal is read by the caller (migrations-folder.ts).
 */

/** a journal entry: its tag (`0007_outbox_dead_lettered_at`) and its `when`, what drizzle records */
export interface JournalEntry {
  tag: string;
  when: number;
}

export interface MigrationsFound {
  /** the build's migrations not recorded there, in order */
  pending: JournalEntry[];
  /** records of migrations this build does not know, newer than its last (a newer build's) */
  newer: number;
}

export function pendingMigrations(
  journal: readonly JournalEntry[],
  recorded: readonly number[],
): MigrationsFound {
  const there = new Set(recorded);
  const last = Math.max(Number.NEGATIVE_INFINITY, ...journal.map((e) => e.when));
  return {
    pending: journal.filter((e) => !there.has(e.when)),
    newer: new Set(recorded.filter((at) => at > last)).size,
  };
}
