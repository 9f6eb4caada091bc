import type { TenantRepos } from '../../domain/repositories.js';
import { DrizzleBookRepo } from './book-repo.js';
import { DrizzleLoanRepo } from './loan-repo.js';
import { DrizzleMemberRepo } from './member-repo.js';
import { DrizzleOutboxRepo } from './outbox-repo.js';
import type { Queryable } from './queryable.js';

/** The repositories of ONE tenant over one drizzle handle; the tenant id is required, not optional. */
export function drizzleTenantRepos(db: Queryable, tenantId: string): TenantRepos {
  if (!tenantId) throw new Error('tenant id is required');
  return {
    tenantId,
    members: new DrizzleMemberRepo(db, tenantId),
    books: new DrizzleBookRepo(db, tenantId),
    loans: new DrizzleLoanRepo(db, tenantId),
    outbox: new DrizzleOutboxRepo(db, tenantId),
  };
}
