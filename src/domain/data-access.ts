/**
 * How the domain reaches a tenant's data without knowing about shards, pools or replicas.
 *
 * - `write` runs `fn` in ONE transaction on the master of the tenant's shard. A `Failure` result
 *   rolls the transaction back (no partial write); a `Success` commits, and the answer names the
 *   replication position the commit produced, from which routes make `X-Consistency-Token`.
 * - `read` runs `fn` outside a transaction on a replica chosen by the router, or on the master
 *   when no replica is healthy, when `from: 'master'` is asked, or when `position` names a write
 *   no usable replica has applied in time. The answer says where it was served from.
 *
 * Both throw `DependencyUnavailableError` when the node cannot be reached (routes answer 503).
 * A write whose caller is gone (`WriteOptions.callerGone`) throws `CallerGoneError` instead of
 * beginning, or of committing: nobody would learn that it was applied.
 */
import type { TenantRepos } from './repositories.js';
import type { Result } from './result.js';

export interface TenantRef {
  id: string;
  shardId: string;
  /** display name for emails; defaults to the id */
  name?: string;
}

/** A point in a shard's replication stream (a GTID position), opaque to the domain. */
export interface ReplicationPosition {
  shardId: string;
  flavour: 'mariadb' | 'mysql';
  gtid: string;
}

export type ReadSource = 'replica' | 'master';

export interface ReadOptions {
  /** the read must see at least this position (a verified consistency token) */
  position?: ReplicationPosition;
  /**
   * `master`: read the master. `master-else-replica`: read the master, and only while it cannot
   * be reached (its breaker open, refused, timed out, or not answering within the router's master
   * read budget: shard-router.ts readMasterElseReplica) an admitted replica — for checks that
   * want current data but should not fail or hang with the master.
   */
  from?: 'master' | 'master-else-replica';
}

export interface WriteOutcome<T> {
  result: Result<T>;
  /**
   * When the transaction committed: the position of its commit. When `fn` answered a Failure
   * (rolled back): the master's position then (the SQL adapter reads it in the ROLLBACK's round
   * trip), so a read with it sees at least what the refusal saw (CONTRACT.md §6: every write
   * answers a consistency token); absent if that round trip failed. Absent when nothing reached
   * the master.
   */
  position?: ReplicationPosition;
}

export interface ReadOutcome<T> {
  value: T;
  readFrom: ReadSource;
}

/** What a write's function may do with its transaction besides its statements. */
export interface WriteTransaction {
  /**
   * Runs `last` (the transaction's final statements, issued together) and commits with them; the
   * SQL adapter sends the COMMIT in their round trip. If one of them fails, nothing is committed
   * and the error is thrown (the write rolls back as on any throw). After it `fn` must issue no
   * statement and answer ok: so `last` may hold no statement whose answer could still turn the
   * write into a Failure — except a guard (a repository method that says so, e.g.
   * `BookRepo.takeCopyOrStop`): when its condition does not hold it stops the round trip before
   * the COMMIT, `commitWith` throws `CommitGuardError`, and `fn` may answer a Failure (rolled
   * back). A Failure answered after a COMMIT that succeeded is a programming error: the write
   * throws (in the SQL adapter, committed).
   */
  commitWith<V>(last: () => Promise<V>): Promise<V>;
  /**
   * The time of this write: the database server's clock (SQL adapter: one `NOW(3)` of the
   * master, read once per transaction, in the round trip of the statements issued in the same
   * turn; the memory adapter's injectable clock). Every time the write stores goes by it, never
   * by this process's clock: other processes compare those times with the server's (the relay
   * sends outbox rows whose `available_at <= NOW(3)`), and an instance whose clock ran 300 s
   * ahead held its mails back 300 s, and returned loans before they were borrowed (an outside
   * check under libfaketime). Call it beside the write's first reads (`Promise.all`): alone
   * before them it costs a round trip of its own.
   */
  now(): Promise<Date>;
}

/**
 * A guard among `commitWith`'s statements found its condition false: the statements issued after
 * it and the COMMIT did not run, nothing is committed, and the write may still answer a Failure.
 * `stop` says which condition: `no_row`, the guarded statement matched no row (the row is gone);
 * `check`, it matched its row but a CHECK constraint of the table refused the change (say, no
 * free copy left: `available >= 0`).
 */
export class CommitGuardError extends Error {
  constructor(
    message = 'a guard of the commit stopped it',
    readonly stop: 'no_row' | 'check' = 'no_row',
  ) {
    super(message);
    this.name = 'CommitGuardError';
  }
}

export interface WriteOptions {
  /**
   * True once the write's answer can no longer reach its caller (HTTP: the client's connection
   * closed, e.g. HAProxy gave up on an instance that was frozen and resumed). Asked before the
   * write begins and right before its COMMIT is sent; when true the write throws
   * `CallerGoneError`, nothing committed. A COMMIT already sent is not called back. `atCommit`:
   * the last check, made with every means there is (Node: the kernel is asked too).
   */
  callerGone?: (atCommit?: boolean) => boolean;
  /**
   * Called right before the COMMIT is sent, after `callerGone`: what it throws rolls the write
   * back and reaches the caller as it is (HTTP: the tenant's directory entry no longer admits the
   * write, routes/directory-bound-writes.ts). Synchronous, so that nothing changes between its
   * check and the COMMIT's being sent.
   */
  admitCommit?: () => void;
  /**
   * Told each attempt's run on the master when it starts (SQL adapter: RunOptions.track). A
   * write its breaker gave up on (503 `write_outcome_unknown`) is answered before its run has
   * settled; the run settles once its server thread was stopped (or the stop given up on), after
   * which no COMMIT of it can still land.
   */
  track?: (run: Promise<unknown>) => void;
}

/**
 * The caller of a write went away before its COMMIT was sent: nothing was committed. Not a
 * dependency failure (no breaker counts it).
 */
export class CallerGoneError extends Error {
  constructor(readonly stage: 'before the write began' | 'before its commit') {
    super(`the caller went away ${stage}: nothing was written`);
    this.name = 'CallerGoneError';
  }
}

export interface DataAccess {
  /**
   * Runs `fn` in one transaction on the tenant's master: committed when it answers ok (or by
   * `tx.commitWith`), rolled back when it answers a failure or throws. `fn` must have no
   * statement still running when it settles (a `Promise.all` branch that goes on to another
   * statement after a sibling failed would run it after the rollback).
   */
  write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>>;
  /**
   * Throws DependencyUnavailableError when a write to the tenant's master would be refused at
   * once (its breaker is open), so a caller skips costly work before it; else returns.
   */
  admitWrite(tenant: TenantRef): void;
  read<T>(
    tenant: TenantRef,
    options: ReadOptions,
    fn: (repos: TenantRepos) => Promise<T>,
  ): Promise<ReadOutcome<T>>;
}
