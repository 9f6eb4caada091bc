/**
 * The email worker's pools on the shard masters named in etcd: one small mysql2 pool per master
 * (outbox-pool.ts: READ COMMITTED and a 1 s lock wait set once per connection), rebuilt when
 * `shards/<id>` changes and ended when the shard goes, every statement through that master's
 * breaker (`mysql-master:<shard>`).
 *
 * Failure modes: a refused, lost or read-only master, or a full or closed pool, rejects with a
 * DependencyError (db/mysql-errors.ts) that counts against the breaker; any other error (a SQL
 * error, a lock wait timeout) passes through unchanged and does not. An unknown shard rejects
 * with a DependencyError at once. A master that changes starts with a fresh breaker.
 */
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ConfigStore } from '../config/interface.js';
import type { ShardConfig } from '../config/schema.js';
import { isConnectionError, toUnavailable } from '../db/mysql-errors.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';
import { createOutboxPool } from './outbox-pool.js';

/** runs one statement on the transaction's connection, through the master's breaker */
export type Sql = <R>(statement: (conn: PoolConnection) => Promise<R>) => Promise<R>;

interface ShardPool {
  raw: string;
  /** host:port of the master the pool connects to */
  master: string;
  /** host:port/database: two shard ids may name the same rows */
  database: string;
  pool: Pool;
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
      const raw = JSON.stringify(shard);
      const old = this.pools.get(id);
      if (old?.raw === raw) continue;
      old?.pool.end().catch(() => {});
      const master = `${shard.master.host}:${shard.master.port}`;
      // another master starts with a fresh breaker, not the old one's open state
      if (old && old.master !== master) this.opts.breakers.remove(`mysql-master:${id}`);
      this.pools.set(id, {
        raw,
        master,
        database: `${master}/${shard.database}`,
        pool: createOutboxPool({
          host: shard.master.host,
          port: shard.master.port,
          database: shard.database,
          user: this.opts.user,
          password: this.opts.password(shard.passwordEnv),
          // consumer prefetch (16, so at most 16 batches) + relay: a delivery batch holds its
          // connection while SMTP answers
          connectionLimit: 20,
        }),
      });
    }
    for (const id of [...this.pools.keys()]) {
      if (!shards.has(id)) {
        this.pools
          .get(id)
          ?.pool.end()
          .catch(() => {});
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
    const entry = this.pools.get(shardId);
    if (!entry) throw new DependencyError(`mysql-master:${shardId}`, `unknown shard ${shardId}`);
    return this.opts.breakers.get(`mysql-master:${shardId}`, 'mysql-master').execute(
      async () => {
        try {
          return await fn(entry.pool);
        } catch (error) {
          // classified as the API's adapters do (db/mysql-errors.ts): a refused, lost or
          // read-only master, or a full or closed pool, counts against the master's breaker
          if (isConnectionError(error)) throw toUnavailable(`mysql-master:${shardId}`, error);
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
   * the pool.
   */
  async transaction<T>(shardId: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
    const conn = await this.onMaster(shardId, (pool) => pool.getConnection());
    const sql = <R>(statement: (c: PoolConnection) => Promise<R>) =>
      this.onMaster(shardId, () => statement(conn));
    let broken = false;
    try {
      await sql((c) => c.beginTransaction());
      const result = await fn(sql);
      await sql((c) => c.commit());
      return result;
    } catch (error) {
      await conn.rollback().catch(() => {
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
