import type { TenantRepos } from '../../domain/repositories.js';
import { DrizzleBookRepo } from './book-repo.js';
import { DrizzleIdempotencyRepo } from './idempotency-repo.js';
import { DrizzleLoanRepo } from './loan-repo.js';
import { DrizzleMemberRepo } from './member-repo.js';
import { DrizzleOutboxRepo } from './outbox-repo.js';
import type { SqlContext } from './sql-context.js';

/** The repositories of ONE tenant over one connection's statements; the tenant id is required, not optional. */
export function drizzleTenantRepos(sql: SqlContext, tenantId: string): TenantRepos {
  if (!tenantId) throw new Error('tenant id is required');
  return {
    tenantId,
    members: new DrizzleMemberRepo(sql, tenantId),
    books: new DrizzleBookRepo(sql, tenantId),
    loans: new DrizzleLoanRepo(sql, tenantId),
    outbox: new DrizzleOutboxRepo(sql, tenantId),
    idempotency: new DrizzleIdempotencyRepo(sql, tenantId),
  };
}
