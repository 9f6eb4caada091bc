/**
 * The email worker's pools on the shard masters named in etcd: one small mysql2 pool per master
 * (outbox-pool.ts: READ COMMITTED and a 1 s lock wait set once per connection), every statement
 * through that master's breaker (`mysql-master:<shard>`).
 *
 * A pool is replaced only when what it connects to changes (`shards/<id>`'s master, database or
 * passwordEnv; an edit of the replicas or their weights keeps it), and retired when the shard
 * goes. A retired pool takes no new work but is ended only once the calls and transactions that
 * already use it are done: ending it under a delivery between its final dots and its COMMIT
 * would roll the marks back and send those mails again.
 *
 * Failure modes: a refused, lost or read-only master, a full or closed pool, or a statement
 * the server ended at its time limit, rejects with a DependencyError (db/mysql-errors.ts) that
 * counts against the breaker (a missing table too); any other error (a SQL error, a lock wait
 * timeout, a master out of disk space or memory) passes through unchanged and does not. An
 * unknown shard rejects with a DependencyError at once. A master that changes starts with a
 * fresh breaker. A pool connection that arrives after the breaker gave up waiting for it
 * (mysql2's pool has no acquire timeout) goes straight back to the pool, as
 * db/mysql-node-set.ts does on the API side.
 */
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ConfigStore } from '../config/interface.js';
import type { ShardConfig } from '../config/schema.js';
import {
  isConnectionError,
  isSchemaMissing,
  isStatementTimeout,
  toSchemaMissing,
  toStatementTimeout,
  toUnavailable,
  withShardNamed,
} from '../db/mysql-errors.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { CallTimeoutError, DependencyError } from '../resilience/errors.js';
import { withDeadline } from '../resilience/with-deadline.js';
import { createOutboxPool, type OutboxPoolOptions } from './outbox-pool.js';

/** a ROLLBACK that takes longer ends its connection instead (the server rolls back then) */
export const ROLLBACK_TIMEOUT_MS = 1000;

/** runs one statement on the transaction's connection, through the master's breaker */
export type Sql = <R>(statement: (conn: PoolConnection) => Promise<R>) => Promise<R>;

interface ShardPool {
  /** what the pool connects to (master, database, passwordEnv): a change replaces the pool */
  target: string;
  /** host:port of the master the pool connects to */
  master: string;
  /** host:port/database: two shard ids may name the same rows */
  database: string;
  pool: Pool;
  /** calls and transactions using the pool now */
  users: number;
  /** replaced or its shard gone: ended once `users` is 0 */
  retired: boolean;
}

/** ends a retired pool once nothing uses it any more */
function endIfIdle(entry: ShardPool): void {
  if (entry.retired && entry.users === 0) entry.pool.end().catch(() => {});
}

function retire(entry: ShardPool | undefined): void {
  if (!entry || entry.retired) return;
  entry.retired = true;
  endIfIdle(entry);
}

export class MasterPools {
  private readonly pools = new Map<string, ShardPool>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly opts: {
      config: ConfigStore;
      breakers: BreakerRegistry;
      user: string;
      password: (passwordEnv: string | undefined) => string | undefined;
      /** the pool of one master (tests pass a fake) */
      createPool?: (options: OutboxPoolOptions) => Pool;
    },
  ) {
    this.unsubscribe = opts.config.onChange((snap) => this.sync(snap.shards));
    this.sync(opts.config.current().shards);
  }

  shardIds(): string[] {
    return [...this.pools.keys()];
  }

  private sync(shards: ReadonlyMap<string, ShardConfig>): void {
    for (const [id, shard] of shards) {
      const target = JSON.stringify([shard.master, shard.database, shard.passwordEnv ?? null]);
      const old = this.pools.get(id);
      if (old?.target === target) continue;
      retire(old);
      const master = `${shard.master.host}:${shard.master.port}`;
      // another master starts with a fresh breaker, not the old one's open state
      if (old && old.master !== master) this.opts.breakers.remove(`mysql-master:${id}`);
      this.pools.set(id, {
        target,
        master,
        database: `${master}/${shard.database}`,
        pool: (this.opts.createPool ?? createOutboxPool)({
          host: shard.master.host,
          port: shard.master.port,
          database: shard.database,
          user: this.opts.user,
          password: this.opts.password(shard.passwordEnv),
          // consumer prefetch (16, so at most 16 batches) + relay: a delivery batch holds its
          // connection while SMTP answers
          connectionLimit: 20,
        }),
        users: 0,
        retired: false,
      });
    }
    for (const id of [...this.pools.keys()]) {
      if (!shards.has(id)) {
        retire(this.pools.get(id));
        this.pools.delete(id);
        this.opts.breakers.remove(`mysql-master:${id}`);
      }
    }
  }

  has(shardId: string): boolean {
    return this.pools.has(shardId);
  }

  /**
   * A configured shard whose database holds one of `outboxIds` (each database asked once, in
   * the order of the shard map; one that does not answer is passed over), or undefined. For a
   * message relayed under a shard id that is gone since: a second id naming the same database,
   * deleted while its messages were queued or waiting in a retry tier.
   */
  async locate(outboxIds: readonly string[]): Promise<string | undefined> {
    const asked = new Set<string>();
    for (const [id, entry] of this.pools) {
      if (asked.has(entry.database)) continue;
      asked.add(entry.database);
      try {
        const [rows] = await this.onMaster(id, (pool) =>
          pool.query<RowDataPacket[]>('SELECT 1 FROM outbox WHERE id IN (?) LIMIT 1', [outboxIds]),
        );
        if (rows.length > 0) return id;
      } catch {
        // that master is down or refuses: another may hold the rows; else the caller retries
      }
    }
    return undefined;
  }

  /** `fn` on the shard's master pool, through its breaker (failure modes above) */
  async onMaster<T>(shardId: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
    return this.using(shardId, (pool) => this.through(shardId, () => fn(pool)));
  }

  /** `fn` on the shard's current pool, which is not ended while `fn` runs (unknown shard: rejects) */
  private async using<T>(shardId: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
    const entry = this.pools.get(shardId);
    if (!entry) throw new DependencyError(`mysql-master:${shardId}`, `unknown shard ${shardId}`);
    entry.users++;
    try {
      return await fn(entry.pool);
    } finally {
      entry.users--;
      endIfIdle(entry);
    }
  }

  /** `fn` through the shard's master breaker, its errors classified (failure modes above) */
  private through<T>(shardId: string, fn: () => Promise<T>): Promise<T> {
    return this.opts.breakers.get(`mysql-master:${shardId}`, 'mysql-master').execute(
      async () => {
        try {
          return await fn();
        } catch (error) {
          // classified as the API's adapters do (db/mysql-errors.ts): a refused, lost or
          // read-only master, or a full or closed pool, counts against the master's breaker
          if (isConnectionError(error)) throw toUnavailable(`mysql-master:${shardId}`, error);
          if (isSchemaMissing(error))
            throw withShardNamed(toSchemaMissing(`mysql-master:${shardId}`, error), shardId);
          if (isStatementTimeout(error)) throw toStatementTimeout(`mysql-master:${shardId}`, error);
          // not a server out of disk or memory (db/mysql-errors.ts serverShortageOf): passed on
          // as it is, not counted against the breaker (a full disk still answers reads); the
          // batcher retries such a delivery as an outage (countsAsAttempt), and one whose COMMIT
          // failed after its mails' final dots only records them at the retry
          throw error;
        }
      },
      { isFailure: (e) => e instanceof DependencyError },
    );
  }

  /**
   * One transaction (READ COMMITTED: the session default of every outbox-pool connection) on a
   * pooled connection of the shard's master; `sql` runs a statement through the master's breaker
   * (work between statements, like a publish or an SMTP send, is not counted there). Rolls back
   * on any error; a connection that cannot even roll back is destroyed instead of returned to
   * the pool. The whole transaction runs on the pool it started on, which is not ended under it
   * (a replaced master's pool waits for it).
   *
   * Waiting for a connection counts against the breaker's call timeout. mysql2's pool has no
   * acquire timeout, so when the breaker gives up first the request stays queued in the pool:
   * the connection it is handed later is nobody's, and is released at once (else the pool would
   * shrink by one for good at every such timeout, until the shard's mail stalled).
   */
  async transaction<T>(shardId: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    return this.using(shardId, (pool) => this.transactionOn(shardId, pool, fn));
  }

  private async transactionOn<T>(shardId: string, pool: Pool, fn: (sql: Sql) => Promise<T>): Promise<T> {
    let asked: Promise<PoolConnection> | undefined;
    let conn: PoolConnection;
    try {
      conn = await this.through(shardId, () => {
        asked = pool.getConnection();
        return asked;
      });
    } catch (error) {
      // given up on (call timeout) while the pool still looks for a connection: whatever it
      // hands over later goes back at once. A connection that came in time but lost the race
      // with the timeout is released the same way; a failed request has nothing to give back
      // (into a pool ended meanwhile, a replaced master's: mysql2 closes it then)
      asked
        ?.then(
          (late) => late.release(),
          () => {},
        )
        .catch(() => {});
      throw error;
    }
    const sql = <R>(statement: (c: PoolConnection) => Promise<R>) =>
      this.through(shardId, () => statement(conn));
    let broken = false;
    try {
      await sql((c) => c.beginTransaction());
      const result = await fn(sql);
      await sql((c) => c.commit());
      return result;
    } catch (error) {
      // a statement the breaker gave up on (its call timeout) may still run on the connection,
      // and a ROLLBACK would queue behind it: behind a COMMIT waiting for disk space it waited
      // until the server had room (MariaDB retries a full binlog every 60 s), holding the
      // delivery, its consumer slot and the connection (an outside check: 11 deliveries for 2
      // minutes). Such a connection is destroyed instead (the server rolls back what it has not
      // committed; a COMMIT already sent may still apply, as a lost answer's), and so is one whose
      // ROLLBACK does not answer within ROLLBACK_TIMEOUT_MS.
      if (error instanceof CallTimeoutError) broken = true;
      else
        await withDeadline(conn.rollback(), ROLLBACK_TIMEOUT_MS, 'ROLLBACK timed out').catch(() => {
          broken = true;
        });
      throw error;
    } finally {
      if (broken) conn.destroy();
      else conn.release();
    }
  }

  /** stops following the shard map (a later change opens no pool) and ends every pool */
  async close(): Promise<void> {
    this.unsubscribe();
    await Promise.all([...this.pools.values()].map((p) => p.pool.end().catch(() => {})));
    this.pools.clear();
  }
}
