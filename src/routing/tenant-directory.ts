/**
 * The tenant directory: `X-Tenant-ID` → the tenant's entry in the live config (etcd
 * `tenants/<id>`, read from memory — never from etcd per request). Runtime-neutral and pure.
 *
 * Outcomes (CONTRACT.md §6): header missing or not matching the id pattern → 400 naming the
 * header; unknown tenant → 404; `suspended` → 403 for everything; `readonly` → the lookup
 * succeeds and writes answer 423 (`writeRefusal`).
 */
import type { ConfigSnapshot } from '../config/config-state.js';
import { ID_PATTERN, type TenantEntry } from '../config/schema.js';
import type { TenantRef } from '../domain/data-access.js';
import { REPEATED_HEADER } from '../http/repeated-header.js';

export const TENANT_HEADER = 'X-Tenant-ID';

export interface DirectoryRefusal {
  status: 400 | 403 | 404 | 423 | 503;
  code: string;
  detail: string;
  /** for 400: the invalid field and what is wrong with it */
  field?: { name: string; message: string };
  /** the tenant's shard, where the tenant exists (a suspended one): answered as `X-Shard` */
  shardId?: string;
  /** when to try again (a move's readonly spell): answered as `Retry-After` */
  retryAfterSeconds?: number;
}

/**
 * How long after a move made its tenant readonly a refused write is told to retry shortly: a
 * move's readonly spell lasts about a second; one that lasts longer is a move that was stopped
 * (killed, or waiting on an instance), and its tenant stays readonly until an operator resumes or
 * undoes it.
 */
export const MOVE_RETRY_WINDOW_MS = 60_000;

export type TenantLookup =
  | { ok: true; tenant: TenantRef; status: TenantEntry['status'] }
  | { ok: false; refusal: DirectoryRefusal };

export function resolveTenant(snapshot: ConfigSnapshot, header: string | undefined): TenantLookup {
  if (header === undefined || header === '') return invalidHeader('required');
  if (!ID_PATTERN.test(header))
    return invalidHeader(header.includes(',') ? REPEATED_HEADER : `must match ${ID_PATTERN.source}`);
  const entry = snapshot.tenants.get(header);
  if (!entry) return refuse(404, 'tenant_not_found', `tenant "${header}" does not exist`);
  if (entry.status === 'suspended') {
    return {
      ok: false,
      refusal: {
        status: 403,
        code: 'tenant_suspended',
        detail: `tenant "${header}" is suspended`,
        shardId: entry.shard,
      },
    };
  }
  return { ok: true, tenant: { id: header, shardId: entry.shard, name: entry.name }, status: entry.status };
}

/**
 * The refusal of a write for a tenant in this status, if any. `movingSince`: when a move made it
 * readonly (`moving/<id>`, ConfigSnapshot.moving); within MOVE_RETRY_WINDOW_MS of that the
 * refusal says so and carries `Retry-After: 1`. The code stays `tenant_readonly` either way.
 */
export function writeRefusal(
  tenantId: string,
  status: TenantEntry['status'],
  movingSince?: number,
  now = Date.now(),
): DirectoryRefusal | undefined {
  if (status !== 'readonly') return undefined;
  // wall clock on purpose: `movingSince` is the `since` of the move's mark in etcd, written by
  // the CLI's host; symmetric: a mark dated ahead (the CLI host's clock) counts within the window, not for years
  if (movingSince !== undefined && Math.abs(now - movingSince) < MOVE_RETRY_WINDOW_MS)
    return {
      status: 423,
      code: 'tenant_readonly',
      detail: `tenant "${tenantId}" is read-only while it moves to another shard; writes resume within seconds`,
      retryAfterSeconds: 1,
    };
  return { status: 423, code: 'tenant_readonly', detail: `tenant "${tenantId}" is read-only` };
}

function refuse(status: DirectoryRefusal['status'], code: string, detail: string): TenantLookup {
  return { ok: false, refusal: { status, code, detail } };
}

function invalidHeader(message: string): TenantLookup {
  const name = `header.${TENANT_HEADER}`;
  return {
    ok: false,
    refusal: {
      status: 400,
      code: 'validation_failed',
      detail: `${name}: ${message}`,
      field: { name, message },
    },
  };
}

/**
 * The refusal of a write for tenant `tenant` (as resolved when its request began) under
 * `snapshot`, if any: the tenant removed (404) or suspended (403) since, readonly (423, see
 * `writeRefusal`), or its entry now names another shard (503 `tenant_moved`, retry at once: the
 * write would land on the shard it left). Asked again right before a write's COMMIT
 * (routes/directory-bound-writes.ts), and by an instance before it reports a config revision.
 */
export function commitRefusal(
  snapshot: ConfigSnapshot,
  tenant: TenantRef,
  now = Date.now(),
): DirectoryRefusal | undefined {
  const lookup = resolveTenant(snapshot, tenant.id);
  if (!lookup.ok) return lookup.refusal;
  if (lookup.tenant.shardId !== tenant.shardId)
    return {
      status: 503,
      code: 'tenant_moved',
      detail: `tenant "${tenant.id}" moved to another shard while this write ran: it was not applied; retry it`,
      retryAfterSeconds: 1,
    };
  return writeRefusal(tenant.id, lookup.status, snapshot.moving.get(tenant.id), now);
}
