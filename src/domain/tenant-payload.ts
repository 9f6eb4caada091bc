import type { TenantRef } from './data-access.js';

/** The tenant fields every outbox payload carries, so the email worker can name the library. */
export function tenantPayload(tenant: TenantRef): { tenantId: string; tenantName: string } {
  return { tenantId: tenant.id, tenantName: tenant.name ?? tenant.id };
}
