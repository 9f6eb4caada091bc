/**
 * Where this checkout's migrations (drizzle-kit output) are, and how many it has: what
 * `npm run migrate` applies and what `shardgate-ctl shards add` compares a shard's schema with.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JournalEntry } from './pending-migrations.js';

/** migrations/ of this checkout: $SHARDGATE_MIGRATIONS_DIR, else the nearest one above this file */
export function findMigrationsFolder(): string | undefined {
  const fromEnv = process.env.SHARDGATE_MIGRATIONS_DIR;
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'migrations');
    if (existsSync(join(candidate, 'meta', '_journal.json'))) return candidate;
    dir = dirname(dir);
  }
  return undefined;
}

/** the number of migrations in the folder's journal; undefined when it cannot be read */
export function migrationCount(folder = findMigrationsFolder()): number | undefined {
  return journalEntries(folder)?.length;
}

/** the folder's migrations in the order they apply, with what drizzle records of each; undefined when unread */
export function migrationJournal(folder = findMigrationsFolder()): JournalEntry[] | undefined {
  return journalEntries(folder)?.map((e) => {
    const { tag, when } = (e ?? {}) as { tag?: unknown; when?: unknown };
    return { tag: String(tag ?? '?'), when: Number(when) };
  });
}

function journalEntries(folder: string | undefined): unknown[] | undefined {
  if (!folder) return undefined;
  try {
    const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as {
      entries?: unknown[];
    };
    return Array.isArray(journal.entries) ? journal.entries : undefined;
  } catch {
    return undefined;
  }
}
