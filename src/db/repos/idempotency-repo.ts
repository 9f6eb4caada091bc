/**
 * Idempotency keys of one tenant (src/domain/idempotency.ts). `claim` is an INSERT on the
 * primary key (tenant_id, idem_key) inside the write's transaction: InnoDB makes a concurrent
 * INSERT of the same key wait for this transaction, and find the key there once it committed
 * (IdempotencyKeyTaken), or go ahead once it rolled back.
 */
import { and, eq, getTableColumns, lt, sql } from 'drizzle-orm';
import {
  expiredBefore,
  IDEMPOTENCY_RETENTION_MS,
  IdempotencyKeyContended,
  IdempotencyKeyTaken,
  type IdempotencyRecord,
  type StoredResponse,
} from '../../domain/idempotency.js';
import type { IdempotencyRepo } from '../../domain/repositories.js';
import { isDuplicateKey, isTransactionConflict } from '../mysql-errors.js';
import { idempotencyKeys } from '../schema.js';
import { affectedRows, type Queryable } from './queryable.js';
import type { SqlContext } from './sql-context.js';

export class DrizzleIdempotencyRepo implements IdempotencyRepo {
  private readonly db: Queryable;

  constructor(
    sqlContext: SqlContext,
    private readonly tenantId: string,
  ) {
    this.db = sqlContext.db;
  }

  private where(key: string) {
    return and(eq(idempotencyKeys.tenantId, this.tenantId), eq(idempotencyKeys.key, key));
  }

  async find(key: string): Promise<IdempotencyRecord | undefined> {
    const [row] = await this.db
      .select({ ...getTableColumns(idempotencyKeys), readAt: sql<string>`UNIX_TIMESTAMP(NOW(3))` })
      .from(idempotencyKeys)
      .where(this.where(key))
      .limit(1);
    if (!row) return undefined;
    const readAt = new Date(Math.round(Number(row.readAt) * 1000));
    // expired by the server's clock, which `created_at` is of (IdempotencyRepo.find)
    if (row.createdAt < expiredBefore(readAt)) return undefined;
    return {
      key: row.key,
      fingerprint: row.fingerprint,
      createdAt: row.createdAt,
      ...(row.response ? { response: JSON.parse(row.response) as StoredResponse } : {}),
      ...(row.claimedBy ? { claimedBy: row.claimedBy } : {}),
      // the server's clock, which `created_at` is of (claims take the write's tx.now())
      readAt,
    };
  }

  async claim(key: string, fingerprint: string, at: Date, claimant: string): Promise<void> {
    // The INSERT alone, so a claim locks only its own key's row: a DELETE of the key's expired
    // row issued first (as before) took a gap lock when there was none (the usual case), and two
    // claims of different keys in one gap each waited on the other's: a deadlock, answered as a
    // request in progress (409) for a key never sent before (an outside check: 1–6 of 90
    // registrations at once, each with its own key). A concurrent claim of the same key waits on
    // the row this INSERT locked. IGNORE: a key already there is no error (it would fail the
    // START TRANSACTION that leaves in the same round trip, mysql-session.ts); every value fits
    // its column (a key is at most 227 characters of the 255), so IGNORE turns nothing else
    // into a warning.
    const row = { tenantId: this.tenantId, key, fingerprint, createdAt: at, claimedBy: claimant };
    try {
      if (affectedRows(await this.db.insert(idempotencyKeys).ignore().values(row)) === 1) return;
      // The key's row is there, and the ignored INSERT holds a shared lock on it. Read whether it
      // expired under that same lock (it never waits); only an expired row is deleted (an
      // exclusive lock on a row that exists: no gap) and claimed again. A DELETE asked of every
      // waiter wanted the exclusive lock of a row the others held shared: three claims of one
      // key deadlocked once its holder committed, and so did two with the holder's `complete`.
      const [expired] = await this.db.execute(
        sql`SELECT 1 AS expired FROM ${idempotencyKeys} WHERE ${and(this.where(key), lt(idempotencyKeys.createdAt, expiredBefore(at)))} LOCK IN SHARE MODE`,
      );
      if ((expired as unknown as unknown[]).length === 0) throw new IdempotencyKeyTaken(key);
      await this.db
        .delete(idempotencyKeys)
        .where(and(this.where(key), lt(idempotencyKeys.createdAt, expiredBefore(at))));
      await this.db.insert(idempotencyKeys).values(row);
    } catch (error) {
      // the only unique key of the table is its primary key
      if (isDuplicateKey(error)) throw new IdempotencyKeyTaken(key);
      // concurrent claims of one key can deadlock once its holder rolled back (a request whose
      // write failed): still retried as a conflict, then answered as a request in progress
      if (isTransactionConflict(error)) throw new IdempotencyKeyContended(key, { cause: error });
      throw error;
    }
  }

  async complete(key: string, response: StoredResponse): Promise<void> {
    await this.db
      .update(idempotencyKeys)
      .set({ response: JSON.stringify(response) })
      .where(this.where(key));
  }

  async purge(limit: number): Promise<number> {
    // on the server's clock, as `find` and `claim` judge expiry
    const retentionUs = sql.raw(String(IDEMPOTENCY_RETENTION_MS * 1000));
    const result = await this.db.execute(
      sql`DELETE FROM ${idempotencyKeys} WHERE ${and(eq(idempotencyKeys.tenantId, this.tenantId), lt(idempotencyKeys.createdAt, sql`NOW(3) - INTERVAL ${retentionUs} MICROSECOND`))} LIMIT ${sql.raw(String(Math.max(1, Math.floor(limit))))}`,
    );
    return affectedRows(result);
  }
}
