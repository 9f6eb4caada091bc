/**
 * What a repository runs its statements on: the drizzle handle of ONE connection, and that
 * connection's prepared drizzle queries.
 *
 * Building a drizzle query costs ~150 µs of CPU here, more than the round trip it makes. The hot
 * statements are therefore built once per connection with `sql.placeholder(…)` for every value
 * (`prepared(builder)`), and each call only fills in the values (`.execute({…})`). Connections
 * live long in the pool, so a statement is built about once per pooled connection. Placeholders
 * go through the same column encoders as literal values (dates, JSON).
 *
 * The builder function is the cache key: pass a module-level function, never an inline arrow
 * (a new arrow on every call would be a new key and build every time).
 */
import type { StatementBatcher } from '../statement-batcher.js';
import type { Queryable } from './queryable.js';

export class SqlContext {
  private readonly statements = new Map<(db: Queryable) => unknown, unknown>();

  /**
   * @param db drizzle over `client`
   * @param client the connection's StatementBatcher: raw statements (START TRANSACTION, COMMIT,
   *   positions) go through it too, so they keep their order with drizzle's and share its batches
   */
  constructor(
    readonly db: Queryable,
    readonly client: Pick<StatementBatcher, 'query' | 'queryLast'>,
  ) {}

  prepared<Q>(build: (db: Queryable) => Q): Q {
    let statement = this.statements.get(build) as Q | undefined;
    if (statement === undefined) {
      statement = build(this.db);
      this.statements.set(build, statement);
    }
    return statement;
  }
}
