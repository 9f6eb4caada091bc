import { getTableConfig, MySqlTable } from 'drizzle-orm/mysql-core';
import { describe, expect, it } from 'vitest';
import * as schema from '../src/db/schema.js';
import { describeCounts, differingTables, type TableDigests, TENANT_TABLES } from './tenant-rows.js';

const digests = (over: Partial<TableDigests> = {}): TableDigests => ({
  tenant_state: { rows: 1, sha256: 'a' },
  members: { rows: 2, sha256: 'b' },
  books: { rows: 0, sha256: 'c' },
  loans: { rows: 1, sha256: 'd' },
  idempotency_keys: { rows: 0, sha256: 'e' },
  ...over,
});

describe('tenant rows', () => {
  it('words counts with singulars', () => {
    expect(describeCounts({ tenant_state: 1, members: 2, books: 0, loans: 1, idempotency_keys: 0 })).toBe(
      '1 tenant_state row, 2 members, 0 books, 1 loan, 0 idempotency keys',
    );
    expect(describeCounts({ tenant_state: 0, members: 1, books: 1, loans: 3, idempotency_keys: 1 })).toBe(
      '0 tenant_state rows, 1 member, 1 book, 3 loans, 1 idempotency key',
    );
  });

  it('names the tables whose rows or content differ', () => {
    expect(differingTables(digests(), digests())).toEqual([]);
    expect(differingTables(digests(), digests({ loans: { rows: 1, sha256: 'x' } }))).toEqual(['loans']);
    expect(
      differingTables(
        digests(),
        digests({ members: { rows: 3, sha256: 'b' }, books: { rows: 1, sha256: 'c' } }),
      ),
    ).toEqual(['members', 'books']);
  });

  it('copies every table of the schema that holds tenant rows, by its primary key after tenant_id', () => {
    // the outbox stays on the shard it was written on (tenant-rows.ts); every other table with a
    // tenant_id must be in TENANT_TABLES, or `tenants move` would leave its rows behind
    const fromSchema = Object.values(schema as Record<string, unknown>)
      .filter((t): t is MySqlTable => t instanceof MySqlTable)
      .map((t) => getTableConfig(t))
      .filter((t) => t.columns.some((c) => c.name === 'tenant_id') && t.name !== 'outbox')
      .map((t) => {
        const pk =
          t.primaryKeys[0]?.columns.map((c) => c.name) ??
          t.columns.filter((c) => c.primary).map((c) => c.name);
        expect(pk[0], t.name).toBe('tenant_id');
        return { name: t.name, key: pk[1] ?? null };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    const listed = TENANT_TABLES.map((t) => ({ name: t.name, key: t.key })).sort((a, b) =>
      a.name.localeCompare(b.name),
    );
    expect(listed).toEqual(fromSchema);
  });
});
