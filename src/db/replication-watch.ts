/**
 * The replication-status check of one node (one per pool: MysqlNode), as its sessions ask it
 * (MysqlSession.replicationStopped): runs flavour-sql.ts replicationStatusSql and reads the rows
 * with routing/replication-stopped.ts.
 *
 * Failure modes:
 * - The account lacks the grant (errno 1227 ER_SPECIFIC_ACCESS_DENIED, 1142
 *   ER_TABLEACCESS_DENIED): answers undefined, and this node is not asked again (its pool's
 *   life); logged once at warn, naming the grant (SLAVE MONITOR on MariaDB ≥ 10.5, REPLICATION
 *   CLIENT on MySQL). The replica is then judged by its lag alone, as before this check existed.
 * - A lost or refused connection: thrown, so the probe fails like a failed position read (the
 *   node does not answer; the router excludes it).
 * - Any other server error (a MySQL older than 8.0.22 has no `SHOW REPLICA STATUS`: 1064):
 *   answers undefined, logged at warn once per distinct errno until a check succeeds. A check that
 *   cannot be made must not take a replica whose positions are fine out of the rotation: its lag
 *   still judges it.
 */
import type { Logger } from '../observability/logger.js';
import type { ServerFlavour } from '../routing/gtid.js';
import {
  type ReplicationStatusRow,
  replicationPaused,
  replicationStopped,
} from '../routing/replication-stopped.js';
import { replicationStatusSql } from './flavour-sql.js';
import { isConnectionError } from './mysql-errors.js';

/** ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR */
const DENIED_ERRNOS = new Set([1227, 1142]);

export class ReplicationWatch {
  private denied = false;
  /** the last check's replicationPaused: threads stopped without an error; undefined when unknown */
  paused: string | undefined;
  /** errno of the last failed check already logged; undefined after a success */
  private loggedErrno: number | undefined;

  constructor(
    /** `host:port/database`, for the log */
    private readonly node: string,
    private readonly logger: Logger,
  ) {}

  /** `query` runs one statement on the caller's connection and answers its rows as objects */
  async stopped(
    flavour: ServerFlavour,
    query: (sql: string) => Promise<ReplicationStatusRow[]>,
  ): Promise<string | undefined> {
    if (this.denied) return undefined;
    let rows: ReplicationStatusRow[];
    this.paused = undefined;
    try {
      rows = await query(replicationStatusSql(flavour));
    } catch (error) {
      if (isConnectionError(error)) throw error;
      const errno = (error as { errno?: number }).errno;
      if (errno !== undefined && DENIED_ERRNOS.has(errno)) {
        this.denied = true;
        const grant = flavour === 'mysql' ? 'REPLICATION CLIENT' : 'SLAVE MONITOR';
        this.logger.warn(
          { node: this.node, errno, grant },
          `replication errors of this replica cannot be seen (the account lacks ${grant}): it is judged by its lag alone`,
        );
        return undefined;
      }
      if (this.loggedErrno !== (errno ?? -1)) {
        this.loggedErrno = errno ?? -1;
        this.logger.warn(
          { node: this.node, errno, err: error instanceof Error ? error.message : String(error) },
          'replication status could not be read: this replica is judged by its lag alone until it can',
        );
      }
      return undefined;
    }
    this.loggedErrno = undefined;
    this.paused = replicationPaused(rows);
    return replicationStopped(rows);
  }
}
