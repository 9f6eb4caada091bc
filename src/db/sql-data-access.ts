/**
 * DataAccess over MariaDB/MySQL shards: the domain's `write`/`read` become router calls.
 *
 * write: one connection on the tenant's shard master; BEGIN, the domain function with the
 *   tenant's repositories on that transaction, COMMIT (or ROLLBACK when it answers a Failure;
 *   `tx.commitWith` sends the COMMIT with the function's last statements),
 *   and the GTID the commit produced (MysqlSession.transaction). Deadlocks and lock-wait
 *   timeouts roll back and retry the whole function (up to `conflictRetries` times), then answer
 *   DependencyUnavailableError. A connection lost during COMMIT is a 503 whose write may or may
 *   not have happened — the usual ambiguity, never a partial write.
 * read: routed by ShardRouter (replica by lag and weight, or master), no transaction.
 */
import {
  CallerGoneError,
  type DataAccess,
  type ReadOptions,
  type ReadOutcome,
  type TenantRef,
  type WriteOptions,
  type WriteOutcome,
  type WriteTransaction,
} from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Failure, Result } from '../domain/result.js';
import { ConflictPersistedError } from '../resilience/dependency-unavailable.js';
import { AFTER_STALL_MS, STALL_MIN_MS, stalledMs } from '../resilience/stall-watch.js';
import type { ShardRouter } from '../routing/shard-router.js';
import { isTransactionConflict } from './mysql-errors.js';
import type { MysqlSession } from './mysql-session.js';
import { drizzleTenantRepos } from './repos/tenant-repos.js';

/**
 * A write the caller stopped waiting for (503 after the master breaker's call_timeout_ms) is
 * stopped too: its connection is closed and its server thread killed (RunOptions), so it does
 * not commit once a hung master resumes. The 503 says which: `dependency_unavailable` when the
 * kill stopped it before its COMMIT, `write_contended` when it was stopped there while it
 * waited on a row lock another transaction held, `write_outcome_unknown` when that could not be
 * confirmed.
 */
const CANCELLABLE = { cancellable: true } as const;

class Rollback extends Error {
  constructor(readonly failure: Failure) {
    super('rollback');
  }
}

/**
 * Resolves after a poll phase of the event loop that began after this call: a timer's turn, then
 * the check phase (setImmediate), which follows a poll. One timer's turn alone is not enough: when
 * the timer is due at once it runs before the next poll, and a FIN that was not in the poll batch
 * of the answer just read is still unread (a CI run committed a write whose client had left
 * during a freeze of its instance that way).
 */
async function afterAPoll(): Promise<void> {
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setImmediate(r));
}

export class SqlDataAccess implements DataAccess {
  private readonly router: ShardRouter<MysqlSession>;
  private readonly conflictRetries: number;

  constructor({
    router,
    conflictRetries = 3,
  }: { router: ShardRouter<MysqlSession>; conflictRetries?: number }) {
    this.router = router;
    this.conflictRetries = conflictRetries;
  }

  async write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    const callerGone = options?.callerGone;
    const admitCommit = options?.admitCommit;
    // a tenant's writes hold at most its share of the master's connections (RunOptions.share)
    const runOptions = options?.track
      ? { ...CANCELLABLE, share: tenant.id, track: options.track }
      : { ...CANCELLABLE, share: tenant.id };
    const begun = performance.now();
    // asked again before each COMMIT: an error thrown inside the transaction rolls it back, and
    // is not a dependency failure, so the master's breaker counts the call as answered.
    // After a stall of this process (frozen, paused) the answer of a write's round trip and the
    // close of its client's connection, both arrived during the stall, may be read in the same
    // turn, the answer first. A reset connection is seen at once (after a stall, callerGone asks
    // the kernel, entry/caller-gone.ts); a closed one (FIN) only once Node has read it. So a
    // write that ran during a stall, or began within AFTER_STALL_MS of one, waits until the event
    // loop has polled its sockets once more before its COMMIT (afterAPoll); other writes pay
    // nothing.
    // then `admitCommit`, last and in the same turn as the COMMIT's send
    const beforeCommit =
      callerGone || admitCommit
        ? async () => {
            if (callerGone) {
              if (!callerGone() && stalledMs(begun - AFTER_STALL_MS) >= STALL_MIN_MS) await afterAPoll();
              if (callerGone(true)) throw new CallerGoneError('before its commit');
            }
            admitCommit?.();
          }
        : undefined;
    for (let attempt = 0; ; attempt++) {
      if (callerGone?.()) throw new CallerGoneError('before the write began');
      try {
        const master = this.router.master(tenant.shardId);
        return await master.run(async (session) => {
          try {
            const { value, gtid } = await session.transaction(async (sql, tx) => {
              const result = await fn(drizzleTenantRepos(sql, tenant.id), tx);
              if (!result.ok) {
                if (tx.committed)
                  throw new Error(`a write answered the failure ${result.code} after commitWith`);
                throw new Rollback(result);
              }
              return result;
            }, beforeCommit);
            if (gtid) this.router.noteCommitted(tenant.shardId, master, session.flavour, gtid);
            return { result: value, position: { shardId: tenant.shardId, flavour: session.flavour, gtid } };
          } catch (error) {
            if (!(error instanceof Rollback)) throw error;
            // read with the ROLLBACK (no round trip of its own); a refusal whose position could
            // not be read stands without a token
            const gtid = session.rolledBackAt;
            return {
              result: error.failure,
              ...(gtid ? { position: { shardId: tenant.shardId, flavour: session.flavour, gtid } } : {}),
            };
          }
        }, runOptions);
      } catch (error) {
        if (!isTransactionConflict(error)) throw error;
        if (attempt >= this.conflictRetries) {
          throw new ConflictPersistedError(`mysql-master:${tenant.shardId}`, {
            cause: error,
            retryAfterSeconds: 1,
          });
        }
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * (attempt + 1)));
      }
    }
  }

  admitWrite(tenant: TenantRef): void {
    this.router.master(tenant.shardId).admit?.();
  }

  async read<T>(
    tenant: TenantRef,
    options: ReadOptions,
    fn: (repos: TenantRepos) => Promise<T>,
  ): Promise<ReadOutcome<T>> {
    return this.router.read(tenant.shardId, options, (session) =>
      fn(drizzleTenantRepos(session.sql, tenant.id)),
    );
  }
}
