/**
 * Loans of one tenant (bound at construction; every statement filters `tenant_id`). Every
 * statement is prepared once per connection (sql-context.ts).
 */
import { and, desc, eq, isNull, lt, param, sql } from 'drizzle-orm';
import { isId } from '../../domain/ids.js';
import type { Loan } from '../../domain/models.js';
import type { LoanListQuery, LoanRepo } from '../../domain/repositories.js';
import { LOANS_BY_MEMBER_INDEX, loans } from '../schema.js';
import { guarded } from './commit-guard.js';
import type { Queryable } from './queryable.js';
import type { SqlContext } from './sql-context.js';

type Row = typeof loans.$inferSelect;
const p = sql.placeholder;

function toLoan(row: Row): Loan {
  return {
    id: row.id,
    bookId: row.bookId,
    memberId: row.memberId,
    borrowedAt: row.borrowedAt,
    returnedAt: row.returnedAt ?? null,
  };
}

const byId = and(eq(loans.tenantId, p('tenantId')), eq(loans.id, p('id')));
const findById = (db: Queryable) => db.select().from(loans).where(byId).limit(1).prepare();
const findByIdForUpdate = (db: Queryable) =>
  db.select().from(loans).where(byId).limit(1).for('update').prepare();
/** a new loan: `returned_at` is left NULL (a placeholder's encoder would not take null) */
const insert = (db: Queryable) =>
  db
    .insert(loans)
    .values({
      tenantId: p('tenantId'),
      id: p('id'),
      bookId: p('bookId'),
      memberId: p('memberId'),
      borrowedAt: p('borrowedAt'),
    })
    .prepare();
const markReturned = (db: Queryable) =>
  db
    .update(loans)
    .set({ returnedAt: sql`${param(p('at'), loans.returnedAt)}` })
    .where(and(byId, isNull(loans.returnedAt)))
    .prepare();
/**
 * Served by (tenant_id, member_id, id), scanned backwards: newest first; named as FORCE INDEX.
 * Left to choose, MariaDB walked the primary key backwards and filtered by member whenever one
 * member held about a tenth of the tenant's loans, older than the rest: 16,858 rows read for a
 * first page of 21 in an outside check.
 */
function listBuilder({ before }: { before: boolean }) {
  return (db: Queryable) =>
    db
      .select()
      .from(loans, { forceIndex: LOANS_BY_MEMBER_INDEX })
      .where(
        and(
          eq(loans.tenantId, p('tenantId')),
          eq(loans.memberId, p('memberId')),
          before ? lt(loans.id, p('beforeId')) : undefined,
        ),
      )
      .orderBy(desc(loans.id))
      .limit(p('limit'))
      .prepare();
}
const listFirst = listBuilder({ before: false });
const listBefore = listBuilder({ before: true });

export class DrizzleLoanRepo implements LoanRepo {
  constructor(
    private readonly sql: SqlContext,
    private readonly tenantId: string,
  ) {}

  findById(id: string): Promise<Loan | undefined> {
    return this.one(findById, id);
  }

  findByIdForUpdate(id: string): Promise<Loan | undefined> {
    return this.one(findByIdForUpdate, id);
  }

  private async one(statement: typeof findById, id: string): Promise<Loan | undefined> {
    if (!isId(id)) return undefined;
    const rows = await this.sql.prepared(statement).execute({ tenantId: this.tenantId, id });
    return rows[0] && toLoan(rows[0]);
  }

  async insert(loan: Loan): Promise<void> {
    if (loan.returnedAt !== null) throw new Error('a new loan cannot be returned already');
    const { id, bookId, memberId, borrowedAt } = loan;
    await this.sql.prepared(insert).execute({ tenantId: this.tenantId, id, bookId, memberId, borrowedAt });
  }

  markReturnedOrStop(id: string, at: Date): Promise<void> {
    return guarded(
      this.sql,
      this.sql.prepared(markReturned).execute({ tenantId: this.tenantId, id, at }),
      'the loan is returned already',
    );
  }

  async listByMember({ memberId, beforeId, limit }: LoanListQuery): Promise<Loan[]> {
    const rows = await this.sql
      .prepared(beforeId === undefined ? listFirst : listBefore)
      .execute({ tenantId: this.tenantId, memberId, beforeId, limit });
    return rows.map(toLoan);
  }
}
