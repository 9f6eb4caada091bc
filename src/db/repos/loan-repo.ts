/** Loans of one tenant (bound at construction; every statement filters `tenant_id`). */
import { and, desc, eq, isNull, lt } from 'drizzle-orm';
import type { Loan } from '../../domain/models.js';
import type { LoanListQuery, LoanRepo } from '../../domain/repositories.js';
import { loans } from '../schema.js';
import { affectedRows, type Queryable } from './queryable.js';

type Row = typeof loans.$inferSelect;

function toLoan(row: Row): Loan {
  return {
    id: row.id,
    bookId: row.bookId,
    memberId: row.memberId,
    borrowedAt: row.borrowedAt,
    returnedAt: row.returnedAt ?? null,
  };
}

export class DrizzleLoanRepo implements LoanRepo {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  async findByIdForUpdate(id: string): Promise<Loan | undefined> {
    const rows = await this.db
      .select()
      .from(loans)
      .where(and(eq(loans.tenantId, this.tenantId), eq(loans.id, id)))
      .limit(1)
      .for('update');
    return rows[0] && toLoan(rows[0]);
  }

  async insert(loan: Loan): Promise<void> {
    await this.db.insert(loans).values({ tenantId: this.tenantId, ...loan });
  }

  async markReturned(id: string, at: Date): Promise<boolean> {
    const result = await this.db
      .update(loans)
      .set({ returnedAt: at })
      .where(and(eq(loans.tenantId, this.tenantId), eq(loans.id, id), isNull(loans.returnedAt)));
    return affectedRows(result) === 1;
  }

  async listByMember({ memberId, beforeId, limit }: LoanListQuery): Promise<Loan[]> {
    // served by (tenant_id, member_id, id), scanned backwards: newest first
    const rows = await this.db
      .select()
      .from(loans)
      .where(
        and(
          eq(loans.tenantId, this.tenantId),
          eq(loans.memberId, memberId),
          beforeId === undefined ? undefined : lt(loans.id, beforeId),
        ),
      )
      .orderBy(desc(loans.id))
      .limit(limit);
    return rows.map(toLoan);
  }
}
