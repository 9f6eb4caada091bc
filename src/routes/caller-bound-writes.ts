/**
 * A write whose caller has gone is not done (Services.callerGone). The case it is for: an
 * instance frozen (SIGSTOP, a long GC or swap stall) while requests queue in its socket buffers.
 * HAProxy gives up on them after `timeout server` (504 to the client, connection reset); when
 * the instance resumes it reads each request together with the reset. Without this check it ran
 * every held write, and each committed though its client had been told it failed (an outside
 * check: 17 of 17 writes answered 504 were applied).
 *
 * Installed last before a write route's handler (after `idempotentWrite`, whose own write that
 * stores the answer of a committed write must still run): the route's DataAccess asks
 * `callerGone` before a write begins, before its COMMIT is sent, and in `admitWrite` (before a
 * registration hashes its password). A gone caller's write throws CallerGoneError, which the
 * app answers 499 `client_closed_request` (nobody reads it; logs and metrics do). A COMMIT sent
 * before the caller went is not undone: that write stands, and a retry with the same
 * `Idempotency-Key` gets its answer.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import {
  CallerGoneError,
  type DataAccess,
  type TenantRef,
  type WriteOptions,
  type WriteOutcome,
  type WriteTransaction,
} from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Result } from '../domain/result.js';

class CallerBoundWrites implements DataAccess {
  constructor(
    private readonly inner: DataAccess,
    private readonly callerGone: (atCommit?: boolean) => boolean,
  ) {}

  write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    return this.inner.write(tenant, fn, { ...options, callerGone: this.callerGone });
  }

  admitWrite(tenant: TenantRef): void {
    if (this.callerGone()) throw new CallerGoneError('before the write began');
    this.inner.admitWrite(tenant);
  }

  read: DataAccess['read'] = (tenant, options, fn) => this.inner.read(tenant, options, fn);
}

export const callerBoundWrites: MiddlewareHandler<AppEnv> = async (c, next) => {
  const services = c.get('services');
  const { callerGone } = services;
  if (callerGone)
    c.set('services', {
      ...services,
      data: new CallerBoundWrites(services.data, (atCommit) => callerGone(c, atCommit)),
    });
  await next();
};
