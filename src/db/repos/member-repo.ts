/**
 * Members of one tenant (bound at construction; every statement filters `tenant_id`). The
 * lookups every request makes are prepared once per connection (sql-context.ts); registration
 * and password changes (argon2-bound anyway) are built per call.
 */
import { and, eq, sql } from 'drizzle-orm';
import type { Member } from '../../domain/models.js';
import type { MemberRepo } from '../../domain/repositories.js';
import { isDuplicateKey } from '../mysql-errors.js';
import { members, tenantState } from '../schema.js';
import { affectedRows, type Queryable } from './queryable.js';
import type { SqlContext } from './sql-context.js';

type Row = typeof members.$inferSelect;
const p = sql.placeholder;

function toMember(row: Row): Member {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    passwordVersion: row.passwordVersion,
    passwordHash: row.passwordHash,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

const findById = (db: Queryable) =>
  db
    .select()
    .from(members)
    .where(and(eq(members.tenantId, p('tenantId')), eq(members.id, p('id'))))
    .limit(1)
    .prepare();
const findByEmail = (db: Queryable) =>
  db
    .select()
    .from(members)
    .where(and(eq(members.tenantId, p('tenantId')), eq(members.email, p('email'))))
    .limit(1)
    .prepare();

export class DrizzleMemberRepo implements MemberRepo {
  private readonly db: Queryable;

  constructor(
    private readonly sql: SqlContext,
    private readonly tenantId: string,
  ) {
    this.db = sql.db;
  }

  async findById(id: string): Promise<Member | undefined> {
    const rows = await this.sql.prepared(findById).execute({ tenantId: this.tenantId, id });
    return rows[0] && toMember(rows[0]);
  }

  async findByEmail(email: string): Promise<Member | undefined> {
    const rows = await this.sql.prepared(findByEmail).execute({ tenantId: this.tenantId, email });
    return rows[0] && toMember(rows[0]);
  }

  async insert(member: Member): Promise<'inserted' | 'email_taken'> {
    try {
      await this.db.insert(members).values({ tenantId: this.tenantId, ...member });
      return 'inserted';
    } catch (error) {
      // MariaDB rolls back only the failed statement; the caller's Failure rolls back the rest
      if (isDuplicateKey(error, 'members_tenant_email_uq')) return 'email_taken';
      throw error;
    }
  }

  async claimFirstRegistration(at: Date): Promise<boolean> {
    // Once a registration has committed, the tenant's counter row exists with n >= 1 and no later
    // one can be the first: a plain (consistent, lock-free) read says so, so one tenant's
    // registrations do not queue on the row's lock for the whole of their transactions (an
    // outside check: 80 registrations/s of one tenant stacked up to 91 InnoDB lock waits here,
    // and 503s beyond). Until then, the upsert X-locks the row until COMMIT/ROLLBACK: the first
    // registrations serialise on it, and exactly one of them reads 1 (its own row version; one
    // committed meanwhile is counted on, not overwritten). A first registration rolled back
    // (its email taken) takes the row's insert with it, so the next one is the first again.
    const [seen] = await this.db
      .select({ n: tenantState.membersRegistered })
      .from(tenantState)
      .where(eq(tenantState.tenantId, this.tenantId));
    if ((seen?.n ?? 0) >= 1) return false;
    await this.db
      .insert(tenantState)
      .values({ tenantId: this.tenantId, membersRegistered: 1, createdAt: at })
      .onDuplicateKeyUpdate({ set: { membersRegistered: sql`${tenantState.membersRegistered} + 1` } });
    const rows = await this.db
      .select({ n: tenantState.membersRegistered })
      .from(tenantState)
      .where(eq(tenantState.tenantId, this.tenantId));
    return (rows[0]?.n ?? 1) === 1;
  }

  async updatePassword({
    id,
    expectedVersion,
    passwordHash,
    at,
  }: {
    id: string;
    expectedVersion: number;
    passwordHash: string;
    at: Date;
  }): Promise<boolean> {
    const result = await this.db
      .update(members)
      .set({ passwordHash, passwordVersion: expectedVersion + 1, updatedAt: at })
      .where(
        and(
          eq(members.tenantId, this.tenantId),
          eq(members.id, id),
          eq(members.passwordVersion, expectedVersion),
        ),
      );
    return affectedRows(result) === 1;
  }
}
