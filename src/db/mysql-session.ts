/**
 * One checked-out connection of a MariaDB/MySQL node, as the router and the repositories use it.
 * Holds the drizzle handle (`db`) bound to THIS connection, so a transaction, the statement that
 * reads the GTID it produced, and a `MASTER_GTID_WAIT` followed by a read all run on one session.
 *
 * Flavour-specific SQL lives here and nowhere else:
 * | need                       | MariaDB                               | MySQL                                  |
 * |----------------------------|---------------------------------------|----------------------------------------|
 * | master position            | @@GLOBAL.gtid_binlog_pos              | @@GLOBAL.gtid_executed                 |
 * | replica applied position   | @@GLOBAL.gtid_slave_pos               | @@GLOBAL.gtid_executed                 |
 * | position of my commit      | @@last_gtid (session), right after it | @@GLOBAL.gtid_executed right after it* |
 * | wait until applied         | MASTER_GTID_WAIT(pos, seconds) = 0    | WAIT_FOR_EXECUTED_GTID_SET(set, s) = 0 |
 * *a superset of the commit: safe (a reader waits for at most a little more than needed); MySQL
 *  is detected and handled but not exercised by the test suite (the local stack is MariaDB).
 */
import type { MySql2Database } from 'drizzle-orm/mysql2';
import type { PoolConnection } from 'mysql2/promise';
import { gtidContains, parseGtid, type ServerFlavour } from '../routing/gtid.js';
import type { NodeSession } from '../routing/sql-node.js';

export type LibraryDb = MySql2Database;
/** drizzle's transaction handle has the same query surface as the database handle */
export type LibraryTx = Parameters<Parameters<LibraryDb['transaction']>[0]>[0];

export class MysqlSession implements NodeSession {
  constructor(
    private readonly connection: PoolConnection,
    readonly flavour: ServerFlavour,
    readonly db: LibraryDb,
  ) {}

  private async scalar(sql: string, params: unknown[] = []): Promise<unknown> {
    const [rows] = await this.connection.query({ sql, values: params, rowsAsArray: true });
    return (rows as unknown[][])[0]?.[0];
  }

  async position(role: 'master' | 'replica'): Promise<string> {
    const sql =
      this.flavour === 'mysql'
        ? 'SELECT @@GLOBAL.gtid_executed'
        : role === 'master'
          ? 'SELECT @@GLOBAL.gtid_binlog_pos'
          : 'SELECT @@GLOBAL.gtid_slave_pos';
    return String((await this.scalar(sql)) ?? '');
  }

  async waitFor(gtid: string, timeoutMs: number): Promise<boolean> {
    if (timeoutMs <= 0) {
      const wanted = parseGtid(this.flavour, gtid);
      const have = parseGtid(this.flavour, await this.position('replica'));
      return wanted !== undefined && have !== undefined && gtidContains(have, wanted);
    }
    const seconds = Math.max(0.001, timeoutMs / 1000);
    const sql =
      this.flavour === 'mysql' ? 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)' : 'SELECT MASTER_GTID_WAIT(?, ?)';
    return Number(await this.scalar(sql, [gtid, seconds])) === 0;
  }

  /**
   * Runs `fn` in one transaction (drizzle: BEGIN … COMMIT/ROLLBACK on this connection) and answers
   * the GTID position the commit produced. On MariaDB `@@last_gtid` is compared with its value
   * before BEGIN: unchanged means the transaction wrote nothing to the binlog (no row changed),
   * and the master's whole binlog position is answered instead (safe: it includes everything read).
   */
  async transaction<T>(fn: (tx: LibraryTx) => Promise<T>): Promise<{ value: T; gtid: string }> {
    if (this.flavour === 'mysql') {
      const value = await this.db.transaction(fn);
      return { value, gtid: String((await this.scalar('SELECT @@GLOBAL.gtid_executed')) ?? '') };
    }
    const before = String((await this.scalar('SELECT @@last_gtid')) ?? '');
    const value = await this.db.transaction(fn);
    const after = String((await this.scalar('SELECT @@last_gtid')) ?? '');
    const gtid = after !== '' && after !== before ? after : await this.position('master');
    return { value, gtid };
  }
}
