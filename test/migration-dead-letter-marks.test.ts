/**
 * Migrations 0007 and 0008 on a database upgraded from 0006, and 0008 on one that had 0007
 * already: the rows published and not delivered when 0008 runs (dead-lettered by a worker that marked nothing, purged from the dead-letter queue, or on
 * their way) are marked `dead_lettered_at = sent_at`, so the lost-mail sweep never sends them on
 * its own; delivered and unpublished rows stay unmarked. Before, the first sweep after an upgrade
 * re-published every mail dead-lettered or purged before it (a review). A database of this test's
 * own on shard-1's master per case, migrated with a copy of migrations/ cut before 0007 or before
 * 0008, then with the real folder; dropped at the end.
 */

import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { type Connection, createConnection } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { findMigrationsFolder } from '../src/db/migrations-folder.js';
import { newId } from '../src/domain/ids.js';
import { topology } from '../stack/topology.js';

const databases: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'shardgate-mig7-'));
let conn: Connection | undefined;

afterAll(async () => {
  for (const database of databases) await conn?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await conn?.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('the dead-letter marks on an outbox of an older release', () => {
  it.each([
    ['0006', 7],
    ['0007', 8],
  ])('from %s: the published, undelivered rows are marked as dead-lettered, and no other', async (_, cut) => {
    const database = `sg_mig_${cut}_${randomBytes(4).toString('hex')}`;
    databases.push(database);
    const folder = findMigrationsFolder();
    if (!folder) throw new Error('no migrations folder in this checkout');
    // the folder as the release before had it: the journal before `cut`
    const before = join(dir, `migrations-${cut}`);
    cpSync(folder, before, { recursive: true });
    const journalPath = join(before, 'meta', '_journal.json');
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as {
      entries: { idx: number; tag: string }[];
    };
    expect(journal.entries.some((e) => e.tag === '0008_outbox_mark_dead_letters')).toBe(true);
    journal.entries = journal.entries.filter((e) => e.idx < cut);
    writeFileSync(journalPath, JSON.stringify(journal));

    const root = await createConnection({
      host: topology.host,
      port: topology.shards[0]!.master.port,
      user: 'root',
    });
    conn = root;
    await root.query(`CREATE DATABASE \`${database}\``);
    const db = await createConnection({
      host: topology.host,
      port: topology.shards[0]!.master.port,
      user: 'root',
      database,
      multipleStatements: false,
    });
    try {
      await migrate(drizzle(db), { migrationsFolder: before });
      const row = (sent: string | null, delivered: string | null) => ({ id: newId(), sent, delivered });
      const rows = {
        deadOrPurged: row('2026-12-01 10:00:00.000', null),
        delivered: row('2026-12-01 10:00:00.000', '2026-12-01 10:00:01.000'),
        unpublished: row(null, null),
      };
      for (const r of Object.values(rows))
        await db.query(
          `INSERT INTO outbox (id, tenant_id, kind, recipient, payload, created_at, available_at, sent_at, delivered_at)
           VALUES (?, 't', 'welcome', 'a@example.com', '{}', NOW(3), NOW(3), ?, ?)`,
          [r.id, r.sent, r.delivered],
        );
      await migrate(drizzle(db), { migrationsFolder: folder });
      const [marks] = (await db.query('SELECT id, dead_lettered_at, sent_at FROM outbox')) as unknown as [
        { id: string; dead_lettered_at: Date | null; sent_at: Date | null }[],
      ];
      const markOf = (id: string) => marks.find((m) => m.id === id)?.dead_lettered_at ?? null;
      expect(markOf(rows.deadOrPurged.id)?.getTime()).toBe(
        marks.find((m) => m.id === rows.deadOrPurged.id)?.sent_at?.getTime(),
      );
      expect(markOf(rows.delivered.id)).toBeNull();
      expect(markOf(rows.unpublished.id)).toBeNull();
    } finally {
      await db.end();
    }
  });
});
