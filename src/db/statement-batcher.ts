/**
 * One round trip for the statements a request issues together on one connection.
 *
 * The API's pooled connections each serve one request at a time, and a request's statements
 * used to leave one by one: a write, a wake-up of the server, an answer, a wake-up of the API —
 * seven or eight times for a borrow or a return. On a small box each of those writes costs more
 * CPU than the statement itself (bench/ROUNDS.md). A `StatementBatcher` stands in front of one
 * connection with mysql2's `query(options, values)` signature (drizzle's mysql2 driver and
 * MysqlSession call it): every statement issued before the current turn's microtasks have run
 * (`process.nextTick`) joins ONE multi-statement COM_QUERY, sent in order. So
 * `Promise.all([a(), b()])` is one round trip, and `START TRANSACTION` issued without waiting
 * rides along with the transaction's first statement. A statement issued alone is passed to the
 * connection unchanged.
 *
 * Contract:
 * - Order: statements reach the server in the order they were issued; batches too (mysql2 runs
 *   one command at a time per connection and queues the rest).
 * - Answers: each caller gets what `query` alone would have answered, `[rows or header, fields]`,
 *   rows as arrays or objects as it asked. Each statement is formatted with its own values by
 *   the connection's own `format` (the same escaping as a lone query), then joined.
 * - Errors: the server stops a multi-statement at the first failing statement; that error
 *   rejects EVERY statement of the batch, those before it included (their effects stand until
 *   the caller's ROLLBACK — all of the API's batched statements run inside a transaction, whose
 *   caller rolls back on any error). A lost connection rejects them all, as it would one by one.
 * - Statements whose answers depend on a `typeCast` join a batch only with statements of the
 *   same cast (compared by the function's source: drizzle builds an identical one per prepared
 *   query); statements that answer no rows (`START`, `COMMIT`, `INSERT`, `UPDATE`, …) join any.
 * - A caller must not leave a statement running when its transaction settles: after a failure
 *   its caller rolls back and returns the connection to the pool, so a statement issued later
 *   would run outside the transaction. Each branch of the rules' `Promise.all` is therefore ONE
 *   statement (or checks after its only one).
 * - `queryLast` (COMMIT with a transaction's final statements) joins the statements issued in the
 *   same turn as their LAST, in their COM_QUERY: a failing statement before it stops the server
 *   before it, so it never runs after a failure. When that turn's statements leave in several
 *   COM_QUERYs (different typeCasts), it waits for all of them and is sent alone only when all
 *   succeeded; otherwise it fails with the first error, unsent. Its `unless` signal cancels it:
 *   fired when the statement is about to be sent (at the flush, or once the other COM_QUERYs
 *   answered), it is not sent and fails with the signal's reason; the turn's other statements go
 *   out without it. MysqlSession fires it when one of a COMMIT's companion promises failed
 *   client-side (a precondition, a value that does not encode) before its statement was issued:
 *   the others would otherwise commit without it. A signal fired after the statement was sent
 *   changes nothing (the server decides then).
 * - Needs `multipleStatements` on the connection. That widens what a failed escape could do (a
 *   stacked statement), so every statement here must carry its input as values, never pasted
 *   into the SQL text — true of drizzle and of every raw statement of this adapter.
 */
import type { FieldPacket, QueryOptions } from 'mysql2/promise';

/** the part of a mysql2 promise connection the batcher uses */
export interface BatchTarget {
  query(options: QueryOptions, values?: unknown): Promise<[unknown, unknown]>;
  format(sql: string, values?: unknown): string;
  /**
   * closes the connection at once; a pooled one leaves its pool (mysql2 PoolConnection). A
   * stand-in without it (a test's) stays as it is.
   */
  destroy?(): void;
}

type TypeCast = QueryOptions['typeCast'];

interface Pending {
  options: QueryOptions;
  values: unknown;
  resolve: (answer: [unknown, unknown]) => void;
  reject: (error: unknown) => void;
  /** `queryLast` only: not sent once fired (see the contract above) */
  unless?: AbortSignal;
}

type Answer = [unknown, unknown];

/** verbs that answer an OK packet, never rows: they fit a batch of any row settings */
const NO_ROWS = /^\s*(START|BEGIN|COMMIT|ROLLBACK|INSERT|UPDATE|DELETE|REPLACE|SET|SAVEPOINT|RELEASE)\b/i;

const castKeys = new WeakMap<object, string>();

/** what a statement's answer depends on: '' for none, else its typeCast's identity by source */
function rowSettings(options: QueryOptions): string | undefined {
  if (NO_ROWS.test(options.sql)) return undefined;
  const cast = options.typeCast as TypeCast;
  if (typeof cast !== 'function') return cast === false ? 'raw' : '';
  let key = castKeys.get(cast);
  if (key === undefined) {
    key = `cast:${cast.toString()}`;
    castKeys.set(cast, key);
  }
  return key;
}

export class StatementBatcher {
  private queue: Pending[] = [];
  /** `queryLast` statements of this turn, in order */
  private lasts: Pending[] = [];
  private scheduled = false;

  constructor(private readonly target: BatchTarget) {}

  query(options: QueryOptions | string, values?: unknown): Promise<Answer> {
    const opts: QueryOptions = typeof options === 'string' ? { sql: options } : options;
    return new Promise((resolve, reject) => {
      this.queue.push({ options: opts, values: values ?? opts.values, resolve, reject });
      this.schedule();
    });
  }

  /**
   * A statement that answers no rows (COMMIT), sent after every statement issued in this turn,
   * before or after it, and only if they all succeed and `unless` has not fired by the time it
   * would be sent (see the contract above).
   */
  queryLast(options: QueryOptions, unless?: AbortSignal): Promise<Answer> {
    if (!NO_ROWS.test(options.sql))
      throw new Error(`queryLast takes a statement without rows: ${options.sql}`);
    return new Promise((resolve, reject) => {
      this.lasts.push({ options, values: options.values, resolve, reject, unless });
      this.schedule();
    });
  }

  /**
   * Closes the connection at once (`BatchTarget.destroy`): for a session whose state is unknown,
   * e.g. a ROLLBACK that failed, so that it is never returned to the pool with a transaction
   * possibly open. Call it with no statement of the caller's still waiting for its answer
   * (mysql2 may never settle those).
   */
  destroy(): void {
    this.target.destroy?.();
  }

  private schedule(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const queue = this.queue;
    const lasts = wanted(this.lasts);
    this.queue = [];
    this.lasts = [];
    const runs: { batch: Pending[]; typeCast: TypeCast }[] = [];
    let start = 0;
    while (start < queue.length) {
      // the longest run from `start` whose row-answering statements share their settings; the
      // first of those gives the run its typeCast
      let settings: string | undefined;
      let typeCast: TypeCast;
      let end = start;
      for (; end < queue.length; end++) {
        const s = rowSettings(queue[end]!.options);
        if (s === undefined) continue;
        if (settings === undefined) {
          settings = s;
          typeCast = queue[end]!.options.typeCast;
        } else if (s !== settings) break;
      }
      runs.push({ batch: queue.slice(start, end), typeCast });
      start = end;
    }
    if (lasts.length === 0) {
      for (const run of runs) this.send(run.batch, run.typeCast);
    } else if (runs.length <= 1) {
      // one COM_QUERY: the server stops at a failing statement, so the last ones never run after it
      this.send([...(runs[0]?.batch ?? []), ...lasts], runs[0]?.typeCast);
    } else {
      const sent = runs.map((run) => this.send(run.batch, run.typeCast));
      Promise.all(sent).then(
        () => {
          const still = wanted(lasts);
          if (still.length > 0) this.send(still, undefined);
        },
        (error: unknown) => {
          for (const p of lasts) p.reject(error);
        },
      );
    }
  }

  /** sends one COM_QUERY; the promise settles like its statements (rejects with their error) */
  private send(batch: Pending[], typeCast: TypeCast): Promise<void> {
    const fail = (error: unknown) => {
      for (const p of batch) p.reject(error);
      throw error;
    };
    if (batch.length === 1) {
      const only = batch[0]!;
      const answered = this.target.query(only.options, only.values).then(only.resolve, fail);
      answered.catch(() => {}); // the caller sees the error; this copy only orders a queryLast
      return answered;
    }
    let sql: string;
    try {
      sql = batch
        .map((p) => (p.values === undefined ? p.options.sql : this.target.format(p.options.sql, p.values)))
        .join(';\n');
    } catch (error) {
      const failed = Promise.resolve().then(() => fail(error));
      failed.catch(() => {});
      return failed;
    }
    const answered = this.target.query({ sql, rowsAsArray: true, typeCast }).then(([results, fields]) => {
      const all = results as unknown[];
      const allFields = fields as (FieldPacket[] | undefined)[];
      if (!Array.isArray(all) || all.length !== batch.length) {
        fail(new Error(`multi-statement answered ${all?.length} results for ${batch.length} statements`));
      }
      batch.forEach((p, i) => {
        const result = all[i];
        const f = allFields[i];
        p.resolve([p.options.rowsAsArray || !Array.isArray(result) ? result : asObjects(result, f), f]);
      });
    }, fail);
    answered.catch(() => {});
    return answered;
  }
}

/** the `queryLast` statements still to send: one whose `unless` fired fails with its reason, unsent */
function wanted(lasts: Pending[]): Pending[] {
  return lasts.filter((p) => {
    if (!p.unless?.aborted) return true;
    p.reject(p.unless.reason);
    return false;
  });
}

/** rows fetched as arrays, shaped as mysql2 shapes them without `rowsAsArray` (a later column of a duplicate name wins) */
function asObjects(rows: unknown[], fields: FieldPacket[] | undefined): Record<string, unknown>[] {
  const names = (fields ?? []).map((f) => f.name);
  return (rows as unknown[][]).map((row) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < names.length; i++) o[names[i]!] = row[i];
    return o;
  });
}
