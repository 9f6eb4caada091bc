/**
 * The email worker's access to the outbox table on every shard master named in etcd: a small
 * mysql2 pool per master (rebuilt when `shards/<id>` changes), every call through that master's
 * breaker (`mysql-master:<shard>`).
 *
 * Contract of `claim`: inside ONE transaction, lock up to `limit` due, unsent rows with
 * `FOR UPDATE SKIP LOCKED` (several relays never take the same row), hand them to `publish`,
 * and mark them sent only if `publish` resolved (i.e. after the broker confirmed). A failure or
 * a crash rolls back: the rows are published again later (at-least-once; the consumer dedups).
 */
import { createPool, type Pool, type PoolConnection, type RowDataPacket } from 'mysql2/promise';
import type { ConfigStore } from '../config/interface.js';
import type { ShardConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';

export interface OutboxRow {
  id: string;
  tenantId: string;
  kind: string;
  recipient: string;
  payload: Record<string, unknown>;
}

interface ShardPool {
  raw: string;
  pool: Pool;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'PROTOCOL_CONNECTION_LOST',
  'EPIPE',
  'EHOSTUNREACH',
]);

export class OutboxStore {
  private readonly pools = new Map<string, ShardPool>();

  constructor(
    private readonly opts: {
      config: ConfigStore;
      breakers: BreakerRegistry;
      logger: Logger;
      user: string;
      password: (passwordEnv: string | undefined) => string | undefined;
    },
  ) {
    opts.config.onChange((snap) => this.sync(snap.shards));
    this.sync(opts.config.current().shards);
  }

  shardIds(): string[] {
    return [...this.pools.keys()];
  }

  private sync(shards: ReadonlyMap<string, ShardConfig>): void {
    for (const [id, shard] of shards) {
      const raw = JSON.stringify(shard);
      if (this.pools.get(id)?.raw === raw) continue;
      this.pools
        .get(id)
        ?.pool.end()
        .catch(() => {});
      this.pools.set(id, {
        raw,
        pool: createPool({
          host: shard.master.host,
          port: shard.master.port,
          database: shard.database,
          user: this.opts.user,
          password: this.opts.password(shard.passwordEnv),
          // consumer prefetch (16) + relay: a delivery holds its connection while SMTP answers
          connectionLimit: 20,
          queueLimit: 100,
          connectTimeout: 2000,
          enableKeepAlive: true,
          dateStrings: false,
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
      }
    }
  }

  private async onMaster<T>(shardId: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
    const entry = this.pools.get(shardId);
    if (!entry) throw new DependencyError(`mysql-master:${shardId}`, `unknown shard ${shardId}`);
    return this.opts.breakers.get(`mysql-master:${shardId}`, 'mysql-master').execute(
      async () => {
        try {
          return await fn(entry.pool);
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code && CONNECTION_CODES.has(code)) {
            throw new DependencyError(`mysql-master:${shardId}`, `${code}: ${(error as Error).message}`, {
              cause: error,
            });
          }
          throw error;
        }
      },
      { isFailure: (e) => e instanceof DependencyError },
    );
  }

  /**
   * One READ COMMITTED transaction on a pooled connection of the shard's master; `sql` runs a
   * statement through the master's breaker (work between statements, like a publish or an SMTP
   * send, is not counted there). Rolls back on any error; a connection that cannot even roll
   * back is destroyed instead of returned to the pool.
   */
  private async transaction<T>(
    shardId: string,
    fn: (sql: <R>(statement: (conn: PoolConnection) => Promise<R>) => Promise<R>) => Promise<T>,
  ): Promise<T> {
    const conn = await this.onMaster(shardId, (pool) => pool.getConnection());
    const sql = <R>(statement: (c: PoolConnection) => Promise<R>) =>
      this.onMaster(shardId, () => statement(conn));
    let broken = false;
    try {
      await sql(async (c) => {
        // a statement waiting on a row lock fails fast with a SQL error (not a breaker failure)
        await c.query('SET SESSION innodb_lock_wait_timeout = 1');
        await c.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        await c.beginTransaction();
      });
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

  /**
   * Claim due rows, publish them, mark them sent; returns how many were sent.
   * READ COMMITTED: the claim locks only the rows it returns (no gap locks), so the API's
   * inserts of new outbox rows never wait for a relay — even one stuck on a frozen broker.
   */
  async claim(
    shardId: string,
    limit: number,
    publish: (rows: OutboxRow[]) => Promise<void>,
  ): Promise<number> {
    return this.transaction(shardId, async (sql) => {
      const [rows] = await sql((c) =>
        c.query<RowDataPacket[]>(
          `SELECT id, tenant_id, kind, recipient, payload FROM outbox
            WHERE sent_at IS NULL AND available_at <= NOW(3)
            ORDER BY sent_at, available_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
          [limit],
        ),
      );
      if (rows.length === 0) return 0;
      await publish(
        rows.map((r) => ({
          id: String(r.id),
          tenantId: String(r.tenant_id),
          kind: String(r.kind),
          recipient: String(r.recipient),
          payload:
            typeof r.payload === 'string' ? JSON.parse(r.payload) : (r.payload as Record<string, unknown>),
        })),
      );
      await sql((c) =>
        c.query('UPDATE outbox SET sent_at = NOW(3) WHERE id IN (?)', [rows.map((r) => r.id)]),
      );
      return rows.length;
    });
  }

  /**
   * Deliver an outbox row at most once across redeliveries, re-publishes and worker processes:
   * in one transaction, lock the row (`SELECT … FOR UPDATE`), skip it if `delivered_at` is set,
   * else run `send` and set `delivered_at` before COMMIT. A concurrent duplicate fails fast on
   * the lock and is retried later, when the record is there. `send` failing rolls back (the
   * row stays undelivered). Remaining window: COMMIT failing after the SMTP server accepted.
   */
  async deliverOnce(
    shardId: string,
    outboxId: string,
    send: () => Promise<void>,
  ): Promise<'sent' | 'duplicate'> {
    return this.transaction(shardId, async (sql) => {
      const [rows] = await sql((c) =>
        c.query<RowDataPacket[]>('SELECT delivered_at FROM outbox WHERE id = ? FOR UPDATE', [outboxId]),
      );
      if (rows.length > 0 && rows[0]?.delivered_at != null) return 'duplicate';
      await send();
      if (rows.length > 0) {
        await sql((c) => c.query('UPDATE outbox SET delivered_at = NOW(3) WHERE id = ?', [outboxId]));
      }
      return 'sent';
    });
  }

  async backlog(shardId: string): Promise<number> {
    return this.onMaster(shardId, async (pool) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL',
      );
      return Number(rows[0]?.n ?? 0);
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.pool.end().catch(() => {})));
    this.pools.clear();
  }
}
