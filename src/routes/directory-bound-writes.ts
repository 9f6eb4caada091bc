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
 *
 * A write whose tenant was switched to another shard, and is admitted there, is sent there
 * (`ShardSwitched`): found before the attempt's first statement, or at its COMMIT, where the
 * attempt is rolled back first. What a new request would do, without the client's retry: the
 * move switches only once the new shard holds every row of the tenant. From then on the request
 * (its later reads, the idempotency answer, its consistency token) uses the new shard. At most
 * MAX_SWITCHES times per request; past that, and when the new entry refuses the write, its
 * refusal is answered (503 `tenant_moved`, or the new entry's 423/403/404).
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
import { setHeader } from '../http/response-headers.js';
import { commitRefusal, type DirectoryRefusal, resolveTenant } from '../routing/tenant-directory.js';

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

/** a request's writes are sent to the shard its tenant was switched to (see the top) */
const MAX_SWITCHES = 2;

/** thrown by a directory check: the tenant is now on `to`, and admitted there; nothing committed */
class ShardSwitched extends Error {
  constructor(readonly to: TenantRef) {
    super(`tenant "${to.id}" was switched to shard "${to.shardId}"`);
  }
}

/** The request's tenant as it stands: the shard its writes go to, changed by ShardSwitched. */
interface RequestTenant {
  current: TenantRef;
  switches: number;
  switchTo(to: TenantRef): void;
}

class DirectoryBoundWrites implements DataAccess {
  constructor(
    private readonly inner: DataAccess,
    private readonly tenant: RequestTenant,
    private readonly admitBegin: () => void,
    private readonly admitCommit: () => void,
    private readonly track: (run: Promise<unknown>) => void,
  ) {}

  /** the request's tenant on the shard it is on now; another tenant (none today) as given */
  private ref(tenant: TenantRef): TenantRef {
    return tenant.id === this.tenant.current.id ? this.tenant.current : tenant;
  }

  async write<T>(
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
    for (;;) {
      try {
        // asked before the master's connection is taken too: a refused write takes none
        this.admitBegin();
        return await this.inner.write(this.ref(tenant), checked, {
          ...options,
          admitCommit: this.admitCommit,
          track: this.track,
        });
      } catch (error) {
        // rolled back (or never begun): the same write again, on the tenant's new shard
        if (!(error instanceof ShardSwitched)) throw error;
        this.tenant.switchTo(error.to);
      }
    }
  }

  admitWrite(tenant: TenantRef): void {
    for (;;) {
      try {
        this.admitBegin();
        break;
      } catch (error) {
        if (!(error instanceof ShardSwitched)) throw error;
        this.tenant.switchTo(error.to);
      }
    }
    this.inner.admitWrite(this.ref(tenant));
  }

  read: DataAccess['read'] = (tenant, options, fn) => this.inner.read(this.ref(tenant), options, fn);
}

export const directoryBoundWrites: MiddlewareHandler<AppEnv> = async (c, next) => {
  const services = c.get('services');
  const tenant: RequestTenant = {
    current: c.get('tenant'),
    switches: 0,
    switchTo(to) {
      this.current = to;
      this.switches += 1;
      c.set('tenant', to);
      // the answer names the shard that took the write (an outside check: 109 answers said the old)
      setHeader(c, 'X-Shard', to.shardId);
    },
  };
  let release: (() => void) | undefined;
  let ended = false;
  // the request's runs on the master not settled yet: a write its breaker gave up on is answered
  // (write_outcome_unknown) before its server thread was stopped, and its COMMIT may land until
  // then, so its hold ends only when the last of them settled
  let running = 0;
  let whenSettled: (() => void) | undefined;
  const track = (run: Promise<unknown>) => {
    running++;
    const settled = () => {
      running--;
      if (running === 0) whenSettled?.();
    };
    run.then(settled, settled);
  };
  const refuseIfNotAdmitted = () => {
    const snapshot = services.config.current();
    const refusal = commitRefusal(snapshot, tenant.current);
    if (refusal) {
      // switched to another shard: sent there when it admits the write, else its refusal
      const lookup = resolveTenant(snapshot, tenant.current.id);
      if (refusal.code === 'tenant_moved' && lookup.ok && tenant.switches < MAX_SWITCHES) {
        const there = commitRefusal(snapshot, lookup.tenant);
        if (!there) throw new ShardSwitched(lookup.tenant);
        throw directoryProblem(there);
      }
      throw directoryProblem(refusal);
    }
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
    release = services.writesInFlight?.hold(tenant.current, revision) ?? (() => {});
  };
  c.set('services', {
    ...services,
    data: new DirectoryBoundWrites(services.data, tenant, admitBegin, admitCommit, track),
  });
  try {
    await next();
  } finally {
    ended = true;
    if (running === 0) release?.();
    else whenSettled = release;
  }
};
