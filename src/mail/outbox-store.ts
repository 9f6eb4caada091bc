/**
 * The email worker's access to the outbox table on every shard master named in etcd, through
 * master-pools.ts (a small pool per master, every statement through that master's breaker).
 *
 * Contract of `claim`: inside ONE transaction, lock up to `limit` due, unsent rows with
 * `FOR UPDATE SKIP LOCKED` (several relays never take the same row), hand them to `publish`,
 * and mark them sent only if `publish` resolved (i.e. after the broker confirmed). A failure or
 * a crash rolls back: the rows are published again later (at-least-once; the consumer dedups).
 *
 * Contract of `deliverBatch`: see there; one transaction (one durable commit) per batch, the
 * mails held by the SMTP server without their final dot until the marks are ready to commit.
 *
 * Contract of `purgeDelivered` (outbox-retention.ts runs it): deletes only rows delivered AND
 * created longer ago than `mail/outbox_retention_hours`, so `deliverBatch` can tell a purged row
 * (a redelivered message for it is a duplicate) from a missing one by its id's time.
 */
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { ConfigStore } from '../config/interface.js';
import { isLockWaitTimeout } from '../db/mysql-errors.js';
import { idFloor, idTime } from '../domain/ids.js';
import type { Logger } from '../observability/logger.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';
import { MasterPools, type Sql } from './master-pools.js';
import type { OutboxPoolOptions } from './outbox-pool.js';
import type { HeldMail, ReleasedMail } from './smtp-sender.js';

/**
 * What `deliverBatch` did with each outbox id it was given (ids it was given twice count once).
 * An id given to `hold` that `hold` did not return is in none of these lists.
 */
export interface BatchDelivery {
  /**
   * `delivered_at` was already set, or the row is gone and its id is older than the outbox
   * retention (`purgeDelivered` deleted it after its delivery): nothing sent
   */
  duplicate: string[];
  /** the row exists but another transaction holds its lock: nothing sent, nothing recorded */
  locked: string[];
  /** accepted by the SMTP server; `delivered_at` committed for those with a row (see `missing`) */
  sent: string[];
  /**
   * ids without an outbox row, younger than the outbox retention (or retention off): given to
   * `hold` all the same (no record possible). Rows vanish only by `purgeDelivered`, or when a
   * master is replaced by a replica that had not received them yet — then the mail is owed.
   */
  missing: string[];
  /** released but not accepted (refused, or the session broke first): not marked delivered */
  refused: Map<string, unknown>;
  /**
   * ids given in `sentBefore` (accepted by the SMTP server at an earlier try whose COMMIT
   * failed): `delivered_at` committed now, or no row to record it in; nothing sent
   */
  recorded: string[];
}

/**
 * A batch's COMMIT failed after its final dots (a full binlog disk, a lost connection, the
 * breaker giving up on it): the mails of `sent` were accepted by the SMTP server, and their
 * `delivered_at` may not have committed. The caller remembers them as sent (DeliveryBatcher:
 * `sentBefore` at the next try), so a retry records them instead of sending them again.
 * `cause` is the COMMIT's error.
 */
export class DeliveryUnrecordedError extends Error {
  constructor(
    readonly sent: readonly string[],
    cause: unknown,
    /** released mails the server refused after their dot (marks cleared): their own reasons */
    readonly refused: ReadonlyMap<string, unknown> = new Map(),
  ) {
    super(
      `mails sent, their delivery not recorded: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'DeliveryUnrecordedError';
  }
}

/**
 * `deliverBatch`'s SMTP step: the mails of these ids, held by the server without their final
 * dot (smtp-sender.ts); an id left out could not be held. Must not reject for a single mail.
 */
export type HoldMails = (ids: string[]) => Promise<Map<string, HeldMail>>;

/** a batch whose transaction committed, waiting for the SMTP server's answers */
interface PendingDelivery extends Omit<BatchDelivery, 'sent' | 'refused'> {
  released: (readonly [string, ReleasedMail])[];
  /** ids whose `delivered_at` the transaction set */
  marked: Set<string>;
}

export interface OutboxRow {
  id: string;
  tenantId: string;
  kind: string;
  recipient: string;
  payload: Record<string, unknown>;
}

/** runs one statement on the transaction's connection, through the master's breaker */
const HOUR_MS = 3_600_000;

/** the waiting lock of a delivery batch ran out: retried with SKIP LOCKED (never leaves the store) */
class RowLockWaitTimeout extends Error {}

export class OutboxStore {
  private readonly masters: MasterPools;

  constructor(
    private readonly opts: {
      config: ConfigStore;
      breakers: BreakerRegistry;
      logger: Logger;
      user: string;
      password: (passwordEnv: string | undefined) => string | undefined;
      /** the pool of one shard master (tests pass a fake) */
      createPool?: (options: OutboxPoolOptions) => Pool;
    },
  ) {
    this.masters = new MasterPools(opts);
  }

  shardIds(): string[] {
    return this.masters.shardIds();
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
    return this.masters.transaction(shardId, async (sql) => {
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
   * Is any row due for the relay? A plain (non-locking, autocommit) read: one round trip, no
   * transaction, so an idle relay poll costs little. Only a hint: `claim` decides.
   */
  async hasDue(shardId: string): Promise<boolean> {
    return this.masters.onMaster(shardId, async (pool) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT 1 FROM outbox WHERE sent_at IS NULL AND available_at <= NOW(3) LIMIT 1',
      );
      return rows.length > 0;
    });
  }

  /**
   * Deliver a batch of outbox rows of one shard once across redeliveries, re-publishes and
   * worker processes, in ONE transaction:
   * 1. `SELECT … WHERE id IN (…) FOR UPDATE` locks the rows, waiting for a row another
   *    transaction holds. That wait is the common case, not the exception: the relay's claim
   *    transaction holds a row until it commits, just after the broker confirmed the message —
   *    by then the consumer may already have it. A row with `delivered_at` set is a duplicate
   *    (not sent); so is an id without a row that is older than the outbox retention (purged
   *    after its delivery, `purgeDelivered`); any other id without a row is `missing`.
   * 2. `hold` gets the undelivered rows and the missing ids and returns the mails the SMTP server
   *    now holds without their final dot (smtp-sender.ts); it must not reject for a single mail.
   * 3. `UPDATE … SET delivered_at` for the held ids with a row; then every final dot is written,
   *    and as soon as they left the process, COMMIT. A worker dying before the dots leaves the
   *    server without the mails and the rows unmarked (rolled back); after the COMMIT, both have
   *    them. The one window left is between the dots and the COMMIT — one turn of the event loop.
   * 4. After the COMMIT, the server's answers: 250 → `sent`. A refusal, or a session that broke
   *    before its answer, → `refused`, and its mark is cleared again (autocommit, retried a few
   *    times) so the retry sends it. Should that clearing fail for good the mail is lost unless
   *    an operator clears the mark; it is logged at error level with the outbox ids.
   * When the wait of step 1 runs out (the 1 s lock wait: a row held by a long transaction, i.e.
   * another worker delivering a copy of it right now), that transaction is rolled back before
   * anything was held and the batch runs again in a new one that locks with SKIP LOCKED: the
   * rows still held are reported `locked` (told from `missing` by a plain SELECT, which sees the
   * latest committed rows without waiting) and are not sent — the caller retries them later,
   * when they show `delivered_at` if that other delivery committed.
   * Ids in `sentBefore` were accepted by the SMTP server at an earlier try whose COMMIT failed:
   * their rows are locked and marked like the others but not given to `hold` (`recorded`); one
   * already delivered is a `duplicate`, one without a row is `recorded` too (nothing to record).
   * Any SQL error before the dots cancels every held mail (the server discards them), rolls back
   * and rejects with that error. COMMIT failing after the dots rejects with DeliveryUnrecordedError
   * naming the mails the server accepted: they may have arrived without a record, and the caller
   * gives them as `sentBefore` at the retry. Such a COMMIT may also have applied (its answer
   * lost, or the breaker gave up on it): before rejecting, the SMTP answers are awaited and the
   * marks of the mails refused after their dot are cleared as in step 4, so the retry sends them
   * rather than acking them as duplicates. The window left there: a clearing that fails for good
   * (logged at error level, as in step 4).
   */
  async deliverBatch(
    relayedUnder: string,
    outboxIds: readonly string[],
    hold: HoldMails,
    sentBefore: ReadonlySet<string> = new Set(),
    /** told right after the COMMIT, before the SMTP server's answers are awaited */
    onCommitted: () => void = () => {},
  ): Promise<BatchDelivery> {
    const ids = [...new Set(outboxIds)];
    if (ids.length === 0)
      return { duplicate: [], locked: [], sent: [], missing: [], refused: new Map(), recorded: [] };
    const shardId = await this.shardHolding(relayedUnder, ids);
    // the batch as it stood when the dots were written: set once `deliverLocked` returned, so a
    // transaction that fails after that failed at its COMMIT
    let dotted: PendingDelivery | undefined;
    const attempt = (mode: 'wait' | 'skip') =>
      this.masters.transaction(shardId, async (sql) => {
        dotted = await this.deliverLocked(sql, ids, hold, mode, sentBefore);
        return dotted;
      });
    let pending: PendingDelivery;
    try {
      try {
        pending = await attempt('wait');
      } catch (error) {
        if (!(error instanceof RowLockWaitTimeout)) throw error;
        pending = await attempt('skip');
      }
    } catch (error) {
      // the COMMIT failed or its outcome is unknown (lost answer, breaker timeout): it may have
      // applied. The marks of mails the server refused must not outlive it either way, or the
      // retry would ack those mails as duplicates and they would never be sent; clearing a mark
      // that never committed is harmless. The clearing UPDATE waits for the row locks the batch
      // held (1 s lock wait, then clearMarks' retries), so it lands after a COMMIT the server
      // was still applying. The accepted ones stay as the COMMIT left them, named to the
      // caller, who gives them as `sentBefore` at the retry: recorded there, not sent again.
      if (dotted) {
        const { sent, refused } = await this.settleAnswers(shardId, dotted);
        throw new DeliveryUnrecordedError(sent, error, refused);
      }
      throw error;
    }
    onCommitted();
    const { released, marked, ...outcome } = pending;
    const { sent, refused } = await this.settleAnswers(shardId, pending);
    return { ...outcome, sent, refused };
  }

  /** the SMTP server's answers of a batch whose dots were written; refused mails unmarked */
  private async settleAnswers(
    shardId: string,
    { released, marked }: PendingDelivery,
  ): Promise<Pick<BatchDelivery, 'sent' | 'refused'>> {
    const answers = await Promise.allSettled(released.map(([, r]) => r.accepted));
    const sent: string[] = [];
    const refused = new Map<string, unknown>();
    answers.forEach((a, i) => {
      const id = released[i]![0];
      if (a.status === 'fulfilled') sent.push(id);
      else refused.set(id, a.reason);
    });
    const unmark = [...refused.keys()].filter((id) => marked.has(id));
    if (unmark.length > 0) await this.clearMarks(shardId, unmark);
    return { sent, refused };
  }

  /**
   * The shard the message names, or, when that id is gone from the shard map, a configured shard
   * whose database holds the rows (MasterPools.locate): their outbox rows are still owed, and
   * the relay never publishes a row twice. None: the unknown shard's DependencyError, so the
   * mails wait as in an outage (retried up to MAX_OUTAGE_RETRIES, about a day, then dead-lettered).
   */
  private async shardHolding(shardId: string, ids: readonly string[]): Promise<string> {
    if (this.masters.has(shardId)) return shardId;
    const holder = await this.masters.locate(ids);
    if (holder === undefined)
      throw new DependencyError(`mysql-master:${shardId}`, `unknown shard ${shardId}`);
    this.opts.logger.info(
      { shard: shardId, holder, mails: ids.length },
      'mails relayed under a shard id that is gone: delivered through the shard whose database holds them',
    );
    return holder;
  }

  /** undo `delivered_at` of mails the server did not accept; a few tries, then an error log */
  private async clearMarks(shardId: string, ids: string[]): Promise<void> {
    for (const delayMs of [0, 200, 1000, 3000]) {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      try {
        await this.masters.onMaster(shardId, (pool) =>
          pool.query('UPDATE outbox SET delivered_at = NULL WHERE id IN (?)', [ids]),
        );
        return;
      } catch (error) {
        this.opts.logger.warn(
          { shard: shardId, ids, err: (error as Error).message },
          'clearing delivery marks failed',
        );
      }
    }
    this.opts.logger.error(
      { shard: shardId, ids },
      'mails marked delivered that the SMTP server did not accept; the marks could not be cleared, so these mails will not be retried',
    );
  }

  private async deliverLocked(
    sql: Sql,
    ids: string[],
    hold: HoldMails,
    mode: 'wait' | 'skip',
    sentBefore: ReadonlySet<string>,
  ): Promise<PendingDelivery> {
    const [rows] = await sql(async (c) => {
      try {
        return await c.query<RowDataPacket[]>(
          `SELECT id, delivered_at IS NOT NULL AS delivered FROM outbox WHERE id IN (?) FOR UPDATE${
            mode === 'skip' ? ' SKIP LOCKED' : ''
          }`,
          [ids],
        );
      } catch (error) {
        if (mode === 'wait' && isLockWaitTimeout(error))
          throw new RowLockWaitTimeout('row lock wait timed out', { cause: error });
        throw error;
      }
    });
    const delivered = new Map(rows.map((r) => [String(r.id), Number(r.delivered) === 1]));
    const absent = ids.filter((id) => !delivered.has(id));
    // a waiting FOR UPDATE returns every row there is; only SKIP LOCKED leaves rows out
    let existing = new Set<string>();
    if (mode === 'skip' && absent.length > 0) {
      const [found] = await sql((c) =>
        c.query<RowDataPacket[]>('SELECT id FROM outbox WHERE id IN (?)', [absent]),
      );
      existing = new Set(found.map((r) => String(r.id)));
    }
    const locked = absent.filter((id) => existing.has(id));
    const purged = this.purgedBefore();
    const isPurged = (id: string) =>
      purged !== undefined && (idTime(id) ?? Number.POSITIVE_INFINITY) < purged;
    const duplicate = [
      ...ids.filter((id) => delivered.get(id) === true),
      ...absent.filter((id) => !existing.has(id) && isPurged(id)),
    ];
    const unrowed = absent.filter((id) => !existing.has(id) && !isPurged(id));
    // sent at an earlier try: recorded, not sent again
    const recordOnly = ids.filter((id) => sentBefore.has(id) && delivered.get(id) === false);
    const recorded = [...recordOnly, ...unrowed.filter((id) => sentBefore.has(id))];
    const missing = unrowed.filter((id) => !sentBefore.has(id));
    const toSend = [...ids.filter((id) => delivered.get(id) === false && !sentBefore.has(id)), ...missing];
    const offered = new Set(toSend);
    const held = toSend.length > 0 ? await hold(toSend) : new Map<string, HeldMail>();
    const marked = new Set([...held.keys()].filter((id) => delivered.get(id) === false));
    const marks = [...marked, ...recordOnly];
    try {
      for (const id of held.keys()) if (!offered.has(id)) throw new Error(`hold returned ${id}, not offered`);
      if (marks.length > 0) {
        await sql((c) => c.query('UPDATE outbox SET delivered_at = NOW(3) WHERE id IN (?)', [marks]));
      }
    } catch (error) {
      for (const h of held.values()) h.cancel();
      throw error;
    }
    const released = [...held].map(([id, h]) => [id, h.release()] as const);
    // COMMIT (by `transaction`, right after this returns) once every dot left the process; a
    // session that broke first fails its `accepted` too and is handled with the refusals
    await Promise.allSettled(released.map(([, r]) => r.written));
    return { duplicate, locked, missing, released, marked, recorded };
  }

  /**
   * Ids made before this moment (ms) whose row is gone were deleted by `purgeDelivered` after
   * their delivery, as far as the worker can tell: a message for one is a duplicate. Undefined
   * while retention is off (`mail/outbox_retention_hours` 0), when nothing deletes rows.
   */
  private purgedBefore(now = Date.now()): number | undefined {
    const hours = this.opts.config.current().mail.outboxRetentionHours;
    return hours > 0 ? now - hours * HOUR_MS : undefined;
  }

  /**
   * Delete up to `limit` outbox rows of the shard that were created more than `retentionHours`
   * ago (by the id's time, this process's clock: the same test `deliverBatch` applies to a
   * missing row) AND delivered more than `retentionHours` ago (`delivered_at`, the master's
   * clock: a mark that a refused mail's clearing may still undo is never that old). Rows never
   * delivered (pending, retrying, dead-lettered) stay. Oldest first, one autocommit statement:
   * READ COMMITTED locks only the rows it deletes, so it never waits for or blocks the relay's
   * claims or a delivery (their rows are younger). Returns how many rows it deleted.
   */
  async purgeDelivered(
    shardId: string,
    retentionHours: number,
    limit: number,
    now = Date.now(),
  ): Promise<number> {
    if (!(retentionHours > 0)) throw new RangeError('retentionHours must be above 0');
    return this.masters.onMaster(shardId, async (pool) => {
      const [result] = await pool.query<ResultSetHeader>(
        `DELETE FROM outbox WHERE id < ? AND delivered_at < NOW(3) - INTERVAL ? SECOND
          ORDER BY id LIMIT ?`,
        [idFloor(now - retentionHours * HOUR_MS), retentionHours * 3600, limit],
      );
      return result.affectedRows;
    });
  }

  /**
   * Mark these outbox rows dead-lettered (`dead_lettered_at`), BEFORE their mail is published to
   * the dead-letter queue: the lost-mail sweep leaves them alone, since their copy is the one an
   * operator holds there. `relayedUnder` is the shard the message names (resolved as
   * `deliverBatch` does when that id is gone). Rejects when the master cannot be written (the
   * batcher then retries the mail as an outage instead of dead-lettering it unmarked). Ids that
   * no configured shard holds have no row to mark: resolves (nothing could re-publish them).
   */
  async markDeadLettered(relayedUnder: string, outboxIds: readonly string[]): Promise<void> {
    const ids = [...new Set(outboxIds)];
    if (ids.length === 0) return;
    let shardId: string;
    try {
      shardId = await this.shardHolding(relayedUnder, ids);
    } catch (error) {
      if (error instanceof DependencyError && !this.masters.has(relayedUnder)) return;
      throw error;
    }
    await this.masters.onMaster(shardId, (pool) =>
      pool.query('UPDATE outbox SET dead_lettered_at = NOW(3) WHERE id IN (?)', [ids]),
    );
  }

  /**
   * Undo `markDeadLettered` for mails whose dead-letter publish failed (they go back to the work
   * queue instead). Best effort, a few tries: a mark left behind only means that this copy, if
   * the broker then dropped it, would not be re-published by the sweep (logged at error level).
   */
  async clearDeadLettered(relayedUnder: string, outboxIds: readonly string[]): Promise<void> {
    const ids = [...new Set(outboxIds)];
    if (ids.length === 0) return;
    for (const delayMs of [0, 200, 1000]) {
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      try {
        const shardId = this.masters.has(relayedUnder)
          ? relayedUnder
          : await this.shardHolding(relayedUnder, ids);
        await this.masters.onMaster(shardId, (pool) =>
          pool.query('UPDATE outbox SET dead_lettered_at = NULL WHERE id IN (?)', [ids]),
        );
        return;
      } catch {
        // tried again below
      }
    }
    this.opts.logger.error(
      { shard: relayedUnder, ids },
      'dead-letter marks of mails that went back to the work queue could not be cleared; should the broker drop them, the sweep will not re-publish them',
    );
  }

  /**
   * The lost-mail sweep's step on one shard (lost-mail-sweep.ts; the caller checked that no copy
   * of a published mail can still be in the broker): rows published more than `graceSeconds`
   * ago (the master's clock), never delivered and not dead-lettered go back to unsent
   * (`sent_at = NULL`), up to `limit` of them, oldest first, so the relay publishes them again.
   * One transaction: `FOR UPDATE SKIP LOCKED` passes over a row a delivery holds right now (its
   * `delivered_at` is about to commit). Index `outbox_undelivered_idx`: only undelivered rows
   * are read. Returns how many went back and the oldest `sent_at` among them.
   */
  async republishLost(
    shardId: string,
    graceSeconds: number,
    limit: number,
  ): Promise<{ count: number; oldestSentAt: Date | undefined }> {
    return this.masters.transaction(shardId, async (sql) => {
      const [rows] = await sql((c) =>
        c.query<RowDataPacket[]>(
          `SELECT id, sent_at FROM outbox
            WHERE delivered_at IS NULL AND dead_lettered_at IS NULL
              AND sent_at < NOW(3) - INTERVAL ? SECOND
            ORDER BY sent_at LIMIT ? FOR UPDATE SKIP LOCKED`,
          [graceSeconds, limit],
        ),
      );
      if (rows.length === 0) return { count: 0, oldestSentAt: undefined };
      await sql((c) => c.query('UPDATE outbox SET sent_at = NULL WHERE id IN (?)', [rows.map((r) => r.id)]));
      const first = rows[0]?.sent_at;
      return { count: rows.length, oldestSentAt: first instanceof Date ? first : undefined };
    });
  }

  /** the shard's unsent outbox rows (a count of `outbox_pending_idx`'s NULL range) */
  async backlog(shardId: string): Promise<number> {
    return this.masters.onMaster(shardId, async (pool) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        'SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL',
      );
      return Number(rows[0]?.n ?? 0);
    });
  }

  /**
   * How long, in seconds by the master's clock, the oldest due unsent row has waited (0 when
   * none): the first entry of `outbox_pending_idx` (sent_at, available_at), whatever the backlog
   * (a review: read with the count, it took 2–3 s at 3 million unsent rows).
   */
  async oldestDueWait(shardId: string): Promise<number> {
    return this.masters.onMaster(shardId, async (pool) => {
      const [rows] = await pool.query<RowDataPacket[]>(
        `SELECT GREATEST(0, TIMESTAMPDIFF(MICROSECOND, available_at, NOW(3))) AS waited_us
           FROM outbox WHERE sent_at IS NULL ORDER BY available_at LIMIT 1`,
      );
      return Number(rows[0]?.waited_us ?? 0) / 1e6;
    });
  }

  /** stops following the shard map and ends every pool */
  close(): Promise<void> {
    return this.masters.close();
  }
}
