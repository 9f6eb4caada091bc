/**
 * In-memory repositories with the same contracts as the drizzle ones (tenant bound at
 * construction, unique (tenant, email), conditional copy taking). Runtime-neutral; used by
 * MemoryDataAccess for unit tests and, later, the embedded mode. Not concurrency-safe by itself:
 * MemoryDataAccess serialises writes.
 */

import { CommitGuardError } from '../domain/data-access.js';
import { expiredBefore, IdempotencyKeyTaken, type IdempotencyRecord } from '../domain/idempotency.js';
import { latest } from '../domain/latest.js';
import type { Book, Loan, Member, OutboxKind } from '../domain/models.js';
import type { BookListQuery, LoanListQuery, TenantRepos } from '../domain/repositories.js';

export interface OutboxRecord {
  id: number;
  tenantId: string;
  kind: OutboxKind;
  recipient: string;
  payload: Record<string, unknown>;
  createdAt: Date;
}

export interface MemoryTables {
  members: Map<string, Member & { tenantId: string }>;
  books: Map<string, Book & { tenantId: string }>;
  loans: Map<string, Loan & { tenantId: string }>;
  outbox: OutboxRecord[];
  registrations: Map<string, number>;
  idempotency: Map<string, IdempotencyRecord & { tenantId: string }>;
}

export function emptyTables(): MemoryTables {
  return {
    members: new Map(),
    books: new Map(),
    loans: new Map(),
    outbox: [],
    registrations: new Map(),
    idempotency: new Map(),
  };
}

export function cloneTables(t: MemoryTables): MemoryTables {
  const copy = <V extends object>(m: Map<string, V>) => new Map([...m].map(([k, v]) => [k, { ...v }]));
  return {
    members: copy(t.members),
    books: copy(t.books),
    loans: copy(t.loans),
    outbox: t.outbox.map((o) => ({ ...o })),
    registrations: new Map(t.registrations),
    idempotency: copy(t.idempotency),
  };
}

const key = (tenantId: string, id: string) => `${tenantId}/${id}`;
const strip = <T extends { tenantId: string }>(row: T | undefined): Omit<T, 'tenantId'> | undefined => {
  if (!row) return undefined;
  const { tenantId: _t, ...rest } = row;
  return { ...rest };
};

/** `now`: the store's clock (the database server's, in the SQL adapter), for `IdempotencyRecord.readAt` */
export function memoryTenantRepos(
  tables: () => MemoryTables,
  tenantId: string,
  now: () => number = Date.now,
): TenantRepos {
  return {
    tenantId,
    members: {
      async findById(id) {
        return strip(tables().members.get(key(tenantId, id)));
      },
      async findByEmail(email) {
        for (const m of tables().members.values())
          if (m.tenantId === tenantId && m.email === email) return strip(m);
        return undefined;
      },
      async insert(member) {
        for (const m of tables().members.values()) {
          if (m.tenantId === tenantId && m.email === member.email) return 'email_taken';
        }
        tables().members.set(key(tenantId, member.id), { ...member, tenantId });
        return 'inserted';
      },
      async claimFirstRegistration() {
        const n = (tables().registrations.get(tenantId) ?? 0) + 1;
        tables().registrations.set(tenantId, n);
        return n === 1;
      },
      async updatePassword({ id, expectedVersion, passwordHash, at }) {
        const m = tables().members.get(key(tenantId, id));
        if (!m || m.passwordVersion !== expectedVersion) return false;
        Object.assign(m, { passwordHash, passwordVersion: expectedVersion + 1, updatedAt: at });
        return true;
      },
    },
    books: {
      async findById(id) {
        return strip(tables().books.get(key(tenantId, id)));
      },
      async findByIdForUpdate(id) {
        return strip(tables().books.get(key(tenantId, id)));
      },
      async findByLoan(loanId) {
        const loan = tables().loans.get(key(tenantId, loanId));
        return loan && strip(tables().books.get(key(tenantId, loan.bookId)));
      },
      async list({ author, afterId, limit }: BookListQuery) {
        return [...tables().books.values()]
          .filter(
            (b) =>
              b.tenantId === tenantId &&
              (author === undefined || b.author.toLowerCase() === author.toLowerCase()),
          )
          .filter((b) => afterId === undefined || b.id > afterId)
          .sort((a, b) => (a.id < b.id ? -1 : 1))
          .slice(0, limit)
          .map((b) => strip(b)!);
      },
      async insert(book) {
        tables().books.set(key(tenantId, book.id), { ...book, tenantId });
      },
      async update(book) {
        if (tables().books.has(key(tenantId, book.id)))
          tables().books.set(key(tenantId, book.id), { ...book, tenantId });
      },
      async delete(id) {
        tables().books.delete(key(tenantId, id));
      },
      async takeCopyOrStop(id, at) {
        const b = tables().books.get(key(tenantId, id));
        if (!b) throw new CommitGuardError('no such book', 'no_row');
        if (b.available <= 0) throw new CommitGuardError('no free copy of the book', 'check');
        b.available -= 1;
        b.updatedAt = latest(b.updatedAt, at);
      },
      async returnCopy(id, at) {
        const b = tables().books.get(key(tenantId, id));
        if (b && b.available < b.copies) {
          b.available += 1;
          b.updatedAt = latest(b.updatedAt, at);
        }
      },
    },
    loans: {
      async findById(id) {
        return strip(tables().loans.get(key(tenantId, id)));
      },
      async findByIdForUpdate(id) {
        return strip(tables().loans.get(key(tenantId, id)));
      },
      async insert(loan) {
        tables().loans.set(key(tenantId, loan.id), { ...loan, tenantId });
      },
      async markReturnedOrStop(id, at) {
        const l = tables().loans.get(key(tenantId, id));
        if (!l || l.returnedAt !== null) throw new CommitGuardError('the loan is returned already');
        l.returnedAt = at;
      },
      async listByMember({ memberId, beforeId, limit }: LoanListQuery) {
        return [...tables().loans.values()]
          .filter((l) => l.tenantId === tenantId && l.memberId === memberId)
          .filter((l) => beforeId === undefined || l.id < beforeId)
          .sort((a, b) => (a.id < b.id ? 1 : -1))
          .slice(0, limit)
          .map((l) => strip(l)!);
      },
    },
    outbox: {
      async add(message, at) {
        const t = tables();
        t.outbox.push({ id: t.outbox.length + 1, tenantId, ...message, createdAt: at });
      },
    },
    // writes are serialised here (memory-data-access.ts): a key held by a committed write is
    // taken, there is no transaction in flight to wait for
    idempotency: {
      async find(idemKey) {
        const r = strip(tables().idempotency.get(key(tenantId, idemKey)));
        if (r && r.createdAt < expiredBefore(new Date(now()))) return undefined;
        return (
          r && {
            ...r,
            response: r.response && { ...r.response, headers: { ...r.response.headers } },
            readAt: new Date(now()),
          }
        );
      },
      async claim(idemKey, fingerprint, at, claimant) {
        const t = tables();
        const held = t.idempotency.get(key(tenantId, idemKey));
        if (held && held.createdAt < expiredBefore(at)) t.idempotency.delete(key(tenantId, idemKey));
        else if (held) throw new IdempotencyKeyTaken(idemKey);
        t.idempotency.set(key(tenantId, idemKey), {
          tenantId,
          key: idemKey,
          fingerprint,
          createdAt: at,
          claimedBy: claimant,
        });
      },
      async complete(idemKey, response) {
        const row = tables().idempotency.get(key(tenantId, idemKey));
        if (row) row.response = response;
      },
      async purge(limit) {
        const t = tables();
        const before = expiredBefore(new Date(now()));
        let n = 0;
        for (const [k, row] of t.idempotency) {
          if (n >= limit) break;
          if (row.tenantId === tenantId && row.createdAt < before) {
            t.idempotency.delete(k);
            n++;
          }
        }
        return n;
      },
    },
  };
}
