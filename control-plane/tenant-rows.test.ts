import { describe, expect, it } from 'vitest';
import { describeCounts, differingTables, type TableDigests } from './tenant-rows.js';

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
});
