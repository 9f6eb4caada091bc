/**
 * A write commits only while the tenant's directory entry still admits it. `requireWritable`
 * and `tenantContext` judge the entry when a request arrives; a write can reach its COMMIT
 * seconds later (a registration waits for its password hash, a busy pool, row locks). Meanwhile
 * `shardgate-ctl tenants move` may have made the tenant readonly, copied its rows and switched it
 * to another shard: a write that committed then landed on the shard it left, behind the copy
 * (an outside check lost 63 registrations answered 201 in one move). So right before its COMMIT
 * a write asks the live directory again (commitRefusal: 423 readonly, 503 `tenant_moved`, 403,
 * 404; nothing committed) and, admitted, is held in `Services.writesInFlight` until its request
 * has finished: the instance reports the config revision that made its tenant readonly only
 * after that (entry/node.ts), and the move waits for that report.
 *
 * Installed first of a write route's write middleware, so the idempotency answer stored after
 * the write (idempotentWrite) is inside the same hold and needs no second check. Also asked at
 * the start of each attempt of a write (before its first statement) and in `admitWrite` (before
 * a registration hashes its password), where it holds nothing.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import type {
  DataAccess,
  TenantRef,
  WriteOptions,
  WriteOutcome,
  WriteTransaction,
} from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Result } from '../domain/result.js';
import { ProblemError } from '../http/problem.js';
import { commitRefusal, type DirectoryRefusal } from '../routing/tenant-directory.js';

/** the answer to a write its tenant's entry refuses; the same as requireWritable's for a 423 */
export function directoryProblem(refusal: DirectoryRefusal): ProblemError {
  return new ProblemError({
    status: refusal.status,
    code: refusal.code,
    title: refusal.status === 423 ? 'Tenant is read-only' : 'Tenant not available',
    detail: refusal.detail,
    headers: refusal.retryAfterSeconds ? { 'Retry-After': String(refusal.retryAfterSeconds) } : undefined,
  });
}

class DirectoryBoundWrites implements DataAccess {
  constructor(
    private readonly inner: DataAccess,
    private readonly admitBegin: () => void,
    private readonly admitCommit: () => void,
  ) {}

  write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    // each attempt (a deadlock's retry too) asks before its first statement: one begun after a
    // move made the tenant readonly takes no lock (the move's copy reads with shared locks, and
    // such writes deadlocked with it until their retries ran out: 503 instead of 423)
    const checked = (repos: TenantRepos, tx: WriteTransaction) => {
      this.admitBegin();
      return fn(repos, tx);
    };
    return this.inner.write(tenant, checked, { ...options, admitCommit: this.admitCommit });
  }

  admitWrite(tenant: TenantRef): void {
    this.admitBegin();
    this.inner.admitWrite(tenant);
  }

  read: DataAccess['read'] = (tenant, options, fn) => this.inner.read(tenant, options, fn);
}

export const directoryBoundWrites: MiddlewareHandler<AppEnv> = async (c, next) => {
  const services = c.get('services');
  const tenant = c.get('tenant');
  let release: (() => void) | undefined;
  let ended = false;
  const refuseIfNotAdmitted = () => {
    const snapshot = services.config.current();
    const refusal = commitRefusal(snapshot, tenant);
    if (refusal) throw directoryProblem(refusal);
    return snapshot.revision;
  };
  // a write that goes on after its request was answered (a call its breaker gave up on, whose
  // statement then got through) is not committed: its caller was told it failed, and a hold
  // taken now would never be released
  const refuseIfEnded = () => {
    if (ended) throw new Error('the request was answered before this write reached its COMMIT');
  };
  // a second write of the request (the idempotency answer) is inside the first one's hold
  const admitBegin = () => {
    refuseIfEnded();
    if (!release) refuseIfNotAdmitted();
  };
  const admitCommit = () => {
    refuseIfEnded();
    if (release) return;
    const revision = refuseIfNotAdmitted();
    release = services.writesInFlight?.hold(tenant, revision) ?? (() => {});
  };
  c.set('services', {
    ...services,
    data: new DirectoryBoundWrites(services.data, admitBegin, admitCommit),
  });
  try {
    await next();
  } finally {
    ended = true;
    release?.();
  }
};
