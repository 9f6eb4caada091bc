/**
 * One checked-out connection of a MariaDB/MySQL node, as the router and the repositories use it.
 * Holds the statements of THIS connection (`sql`: its drizzle handle, prepared queries and
 * StatementBatcher, through which every statement here goes), so a transaction, the GTID it
 * produced, and a `MASTER_GTID_WAIT` followed by a read all run on one session.
 *
 * The flavour-specific statements are in flavour-sql.ts; the position of a commit differs too:
 * | need                       | MariaDB                                | MySQL                                  |
 * |----------------------------|----------------------------------------|----------------------------------------|
 * | position of my commit      | `last_gtid` in COMMIT's OK packet (†)  | @@GLOBAL.gtid_executed right after it* |
 * (†) the session tracks `last_gtid` (`session_track_system_variables`, set when the pool opens
 *  the connection: `sessionInitSql` in mysql-node-set.ts), so the server reports the GTID of a
 *  commit in the commit's own answer — no extra round trip. No report means the transaction wrote
 *  nothing to the binlog (or tracking is off): the master's whole binlog position is answered
 *  then (one more query; safe: it includes everything the transaction read).
 * *a superset of the commit: safe (a reader waits for at most a little more than needed); MySQL
 *  is detected and handled but not exercised by the test suite (the local stack is MariaDB).
 */
import { sql } from 'drizzle-orm';
import { CommitGuardError, type WriteTransaction } from '../domain/data-access.js';
import { gtidContains, parseGtid, type ServerFlavour } from '../routing/gtid.js';
import type { NodeSession } from '../routing/sql-node.js';
import { BINLOG_STATE_SQL, positionSql, waitSql } from './flavour-sql.js';
import { commitGuardStopOf, isConnectionError, isSchemaMissing } from './mysql-errors.js';
import type { ReplicationWatch } from './replication-watch.js';
import type { SqlContext } from './repos/sql-context.js';
import type { StatementBatcher } from './statement-batcher.js';

/** the transaction `fn` gets: `committed` once the COMMIT `commitWith` sent has succeeded */
export interface SessionTransaction extends WriteTransaction {
  readonly committed: boolean;
}

export class MysqlSession implements NodeSession {
  /**
   * A COMMIT was sent on this session (and may have been applied, whatever its answer): a lost
   * connection after this is a write of unknown outcome, and the call is never run again.
   */
  commitSent = false;
  /**
   * The master's replication position, read in the same round trip as the ROLLBACK of this
   * session's last transaction that rolled back (a refusal's: what it saw, or newer); undefined
   * when that round trip failed. No extra round trip, so no extra chance to hang.
   */
  rolledBackAt: string | undefined;
  /**
   * A transaction of this session committed a write: its COMMIT's OK packet carried a `last_gtid`
   * (MariaDB). Never set on MySQL, whose COMMIT does not say whether it wrote
   */
  committedWrite = false;

  constructor(
    readonly flavour: ServerFlavour,
    readonly sql: SqlContext,
    /** its node's replication-status check (replication-watch.ts); none: never asked */
    private readonly replication?: ReplicationWatch,
  ) {}

  private async scalar(sql: string, params: unknown[] = []): Promise<unknown> {
    const [rows] = await this.sql.client.query({ sql, rowsAsArray: true }, params);
    return (rows as unknown[][])[0]?.[0];
  }

  /**
   * The server's clock, `NOW(3)`, as an instant (UNIX_TIMESTAMP reads it in the session's time
   * zone). The times the application stores are written as UTC text (drizzle) and compared with
   * `NOW(3)` by other processes (the outbox relay): every session pins its zone to UTC
   * (session-sql-mode.ts), so those comparisons hold on a server in any zone.
   */
  async serverTime(): Promise<Date> {
    // through drizzle, as the repositories' reads: a statement joins a round trip only with
    // statements of the same typeCast (statement-batcher.ts), and this one rides with theirs
    const [rows] = (await this.sql.db.execute(sql`SELECT UNIX_TIMESTAMP(NOW(3)) AS now`)) as unknown as [
      { now: unknown }[],
    ];
    const seconds = Number(rows[0]?.now);
    if (!Number.isFinite(seconds)) throw new Error('the server did not answer its time');
    return new Date(Math.round(seconds * 1000));
  }

  async position(role: 'master' | 'replica'): Promise<string> {
    return String((await this.scalar(positionSql(this.flavour, role))) ?? '');
  }

  async binlogState(): Promise<string | undefined> {
    if (this.flavour !== 'mariadb') return undefined;
    return String((await this.scalar(BINLOG_STATE_SQL)) ?? '');
  }

  replicationPaused(): string | undefined {
    return this.replication?.paused;
  }

  /**
   * What `npm run migrate` recorded on this node of each migration it applied (its journal
   * `when`, drizzle's `created_at`); none when it has no record (never migrated).
   */
  async recordedMigrations(): Promise<number[]> {
    try {
      const [rows] = await this.sql.client.query({
        sql: 'SELECT created_at FROM `__drizzle_migrations`',
        rowsAsArray: true,
      });
      return (rows as unknown[][]).map((r) => Number(r[0]));
    } catch (error) {
      if (isSchemaMissing(error)) return [];
      throw error;
    }
  }

  async replicationStopped(): Promise<string | undefined> {
    if (!this.replication) return undefined;
    return this.replication.stopped(this.flavour, async (sql) => {
      const [rows] = await this.sql.client.query({ sql });
      return rows as Record<string, unknown>[];
    });
  }

  async probeWrite(probeId: string): Promise<void> {
    // autocommit: one statement, one round trip; NOW(3) so every probe changes the row (binlogged)
    await this.sql.client.query(
      'INSERT INTO breaker_probes (probe_id, probed_at) VALUES (?, NOW(3)) ON DUPLICATE KEY UPDATE probed_at = NOW(3)',
      [probeId],
    );
  }

  async waitFor(gtid: string, timeoutMs: number): Promise<boolean> {
    if (timeoutMs <= 0) {
      const wanted = parseGtid(this.flavour, gtid);
      const have = parseGtid(this.flavour, await this.position('replica'));
      return wanted !== undefined && have !== undefined && gtidContains(have, wanted);
    }
    const seconds = Math.max(0.001, timeoutMs / 1000);
    return Number(await this.scalar(waitSql(this.flavour), [gtid, seconds])) === 0;
  }

  /**
   * Runs `fn` in one transaction on this connection (START TRANSACTION … COMMIT; ROLLBACK when
   * `fn` throws) and answers the GTID position the commit produced. The statements of `fn` go
   * through `sql`, which is bound to this same connection, so they are part of the transaction.
   * START TRANSACTION is issued without waiting for its answer: it leaves in one round trip with
   * `fn`'s first statements (StatementBatcher), and its failure fails them too.
   * `tx.commitWith(last)` sends the COMMIT with `last`'s statements (`queryLast`): one round trip
   * fewer, and a row lock taken by them is held only for the commit itself. A statement of `last`
   * that fails stops the server before the COMMIT, and `fn`'s throw rolls back as usual; a guard's
   * stop (commit-guard.ts) is thrown as `CommitGuardError`, whichever of the round trip's
   * statements reported it first, and `fn` may catch it and answer a Failure. If `fn` throws
   * after that COMMIT succeeded, the ROLLBACK finds nothing to undo: the write stands.
   * A promise of `last` that fails client-side before its statement is issued (a precondition,
   * a value that does not encode) cancels the COMMIT (`queryLast`'s `unless`): the others'
   * statements go out without it and are rolled back, as the contract of `commitWith` says
   * (domain/data-access.ts). That holds for a promise that fails within the microtasks of
   * `last`'s call (the batch leaves on `process.nextTick`, after them); one that fails later,
   * after waiting on I/O or a timer, is too late to stop the COMMIT: `last` must not wait so.
   * A COMMIT that fails (a guard stopped it and `fn` answered ok all the same, or the server
   * refused it) is rolled back too before its error is thrown: the transaction may still be open,
   * and the next START TRANSACTION on the pooled connection would commit its statements.
   * `beforeCommit` is called and awaited right before the COMMIT is sent (before `last`'s
   * statements, or after `fn` answered): what it throws rolls back like `fn`'s own throw.
   * A ROLLBACK that fails (connection lost, or refused) leaves the session's state unknown: the
   * connection is destroyed here (StatementBatcher.destroy), so it never goes back to the pool,
   * and the error thrown is
   * - the COMMIT's own connection error when commitWith's COMMIT was lost (sent, outcome unknown),
   *   even if `fn` caught it and threw something else: the caller answers that the write's outcome
   *   is unknown;
   * - else the error the transaction failed with, as it is. A refusal (a Failure), a guard's
   *   stop, a caller gone, a bug: nothing was committed (no COMMIT was sent, or it was stopped or
   *   refused), so the refusal is still the right answer (a 409 stays a 409). A connection error
   *   of `fn`'s statements stays that (503, or a retry on a fresh connection). The ROLLBACK's
   *   error is dropped: set as its cause, the refusal made the classification miss the lost
   *   connection, and the raw driver error answered 500 (mysql-errors.ts `driverCause`).
   */
  async transaction<T>(
    fn: (sql: SqlContext, tx: SessionTransaction) => Promise<T>,
    beforeCommit?: () => void | Promise<void>,
  ): Promise<{ value: T; gtid: string }> {
    const client = this.sql.client;
    const begun = client.query({ sql: 'START TRANSACTION' });
    // its failure fails `fn`'s first statements too (same round trip), or is thrown below; `fn`'s
    // own error is the one thrown (a guard's CommitGuardError, not the raw error of its batch)
    begun.catch(() => {});
    let commit: Promise<[unknown, unknown]> | undefined;
    let committed = false;
    /** what commitWith's COMMIT failed with (stopped, cancelled, refused or lost) */
    let commitFailure: unknown;
    let serverNow: Promise<Date> | undefined;
    const tx: SessionTransaction = {
      get committed() {
        return committed;
      },
      // one read of the master's clock per transaction, issued when first asked (in the round
      // trip of the statements issued in that turn); see WriteTransaction.now
      now: () => {
        serverNow ??= this.serverTime();
        return serverNow;
      },
      commitWith: async (last) => {
        if (commit) throw new Error('commitWith called twice in one transaction');
        await beforeCommit?.();
        const value = last();
        // a promise of `last` failing before the batch leaves cancels the COMMIT (see above)
        const failed = new AbortController();
        value.then(undefined, (error: unknown) => failed.abort(error));
        this.commitSent = true;
        const sent = client.queryLast({ sql: 'COMMIT' }, failed.signal);
        commit = sent;
        sent.then(
          () => {
            committed = true;
          },
          (error: unknown) => {
            commitFailure = error;
          },
        );
        try {
          const [answer] = await Promise.all([value, sent]);
          return answer;
        } catch (error) {
          // one failing statement rejects every statement of its round trip, the COMMIT included,
          // with one error: settled by now unless `last` threw by itself (then wait for the COMMIT)
          const stopped = await sent.then(
            () => false,
            () => true,
          );
          const stop = stopped ? commitGuardStopOf(error) : undefined;
          throw stop ? new CommitGuardError(undefined, stop) : error;
        }
      },
    };
    // ROLLBACK after the transaction failed with `error`; answers the error to throw (see above)
    const rollBack = async (error: unknown): Promise<unknown> => {
      this.rolledBackAt = undefined;
      try {
        // issued in one turn: one round trip (StatementBatcher)
        const [, [rows]] = await Promise.all([
          client.query({ sql: 'ROLLBACK' }),
          client.query({ sql: positionSql(this.flavour, 'master'), rowsAsArray: true }),
        ]);
        this.rolledBackAt = String((rows as unknown[][])[0]?.[0] ?? '') || undefined;
        return error;
      } catch {
        destroyConnection(client);
        return commitFailure !== undefined && isConnectionError(commitFailure) ? commitFailure : error;
      }
    };
    let value: T;
    try {
      value = await fn(this.sql, tx);
      await begun;
      if (!commit) await beforeCommit?.();
    } catch (error) {
      // a COMMIT sent by commitWith has settled: commitWith awaited it, or its statements' error
      // failed it
      commit?.catch(() => {});
      throw await rollBack(error);
    }
    if (!commit) this.commitSent = true;
    let ok: unknown;
    try {
      [ok] = await (commit ?? client.query({ sql: 'COMMIT' }));
    } catch (error) {
      throw await rollBack(error);
    }
    if (this.flavour === 'mysql') {
      return { value, gtid: String((await this.scalar('SELECT @@GLOBAL.gtid_executed')) ?? '') };
    }
    const tracked = (ok as { stateChanges?: { systemVariables?: Record<string, string> } }).stateChanges
      ?.systemVariables?.last_gtid;
    if (tracked) this.committedWrite = true;
    return { value, gtid: tracked ? tracked : await this.position('master') };
  }
}

/**
 * Closes the session's connection (StatementBatcher.destroy: out of its pool, never reused).
 * SqlContext types its client by the statements only; a stand-in without `destroy` (a test's)
 * is left as it is.
 */
function destroyConnection(client: SqlContext['client']): void {
  (client as Partial<Pick<StatementBatcher, 'destroy'>>).destroy?.();
}
