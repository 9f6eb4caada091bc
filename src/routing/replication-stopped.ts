/**
 * Why a replica's replication has stopped for good, from the rows of its replication status
 * (flavour-sql.ts replicationStatusSql: one row per connection or channel). Pure: rows in, reason
 * out. Columns are read in either spelling: MariaDB and MySQL before 8.0.22 `Slave_IO_Running`,
 * MySQL 8.0.22+ `Replica_IO_Running`; `Last_SQL_Errno`, `Last_IO_Errno` and their texts are named
 * alike in both.
 *
 * A reason (the first connection that has one) when
 * - its SQL thread is not running and `Last_SQL_Errno` is not 0: an event failed to apply (a
 *   duplicate key 1062, a missing row 1032). It stays stopped until an operator acts, so the
 *   replica will only fall further behind: excluded at once, not 5 s later when its lag tells;
 * - its IO thread is `No` with `Last_IO_Errno` not 0: it gave up fetching (the master's binlog
 *   purged past it, a server id clash; not a client error 2000–2999 such as 2003, which it retries
 *   and which stays set after a `STOP SLAVE` made meanwhile). An IO thread `Connecting` is retrying (the master is down
 *   or restarting) and is no reason: the lag judges it, as it judges a replica whose master
 *   merely stalls.
 * No reason: a thread stopped with errno 0 (a plain `STOP SLAVE`: the operator's choice, the lag
 * judges it), and no row at all (not a replica: the position probes judge that).
 */

/** the most of a server's error text a reason carries */
const ERROR_TEXT_MAX = 200;

export type ReplicationStatusRow = Record<string, unknown>;

export function replicationStopped(rows: readonly ReplicationStatusRow[]): string | undefined {
  for (const row of rows) {
    const reason = stoppedReason(row);
    if (reason) return reason;
  }
  return undefined;
}

function stoppedReason(row: ReplicationStatusRow): string | undefined {
  const connection = text(column(row, 'Connection_name') ?? column(row, 'Channel_Name'));
  const where = connection ? ` (connection '${connection}')` : '';
  const sqlErrno = Number(column(row, 'Last_SQL_Errno') ?? 0);
  if (threadRunning(row, 'SQL') !== 'Yes' && sqlErrno) {
    return `replication stopped${where}: SQL thread error ${sqlErrno}: ${trimmed(column(row, 'Last_SQL_Error'))}`;
  }
  const ioErrno = Number(column(row, 'Last_IO_Errno') ?? 0);
  // a client error (2000–2999: 2003 cannot connect, 2013 lost) is one the IO thread retries; its
  // errno stays set after a `STOP SLAVE` made while it retried (reset only when the thread
  // starts), so a thread `No` with one was stopped by hand, not given up (a review)
  if (threadRunning(row, 'IO') === 'No' && ioErrno && !(ioErrno >= 2000 && ioErrno < 3000)) {
    return `replication stopped${where}: IO thread error ${ioErrno}: ${trimmed(column(row, 'Last_IO_Error'))}`;
  }
  return undefined;
}

/**
 * Replication stopped without an error (a `STOP SLAVE`: the operator's choice, judged by the lag),
 * in words for the replica's `lastError`, or undefined: every thread running (`Connecting`
 * included), no row, or a reason `replicationStopped` gives. An outside check saw a replica with
 * both threads stopped shown only as growing lag, nothing saying why.
 */
export function replicationPaused(rows: readonly ReplicationStatusRow[]): string | undefined {
  if (replicationStopped(rows)) return undefined;
  for (const row of rows) {
    const io = threadRunning(row, 'IO');
    const sql = threadRunning(row, 'SQL');
    if (io !== 'No' && sql !== 'No') continue;
    const connection = text(column(row, 'Connection_name') ?? column(row, 'Channel_Name'));
    const where = connection ? ` (connection '${connection}')` : '';
    const stopped = [io === 'No' && 'IO', sql === 'No' && 'SQL'].filter(Boolean).join(' and ');
    return `replication ${stopped} thread stopped${where} without an error (STOP SLAVE); it falls behind until started`;
  }
  return undefined;
}

/** `Yes`, `No`, `Connecting` (IO thread), or '' when the column is missing */
function threadRunning(row: ReplicationStatusRow, thread: 'IO' | 'SQL'): string {
  return text(column(row, `Slave_${thread}_Running`) ?? column(row, `Replica_${thread}_Running`));
}

/** a column by name, its case ignored (MariaDB `Connection_name`, MySQL `Channel_Name`) */
function column(row: ReplicationStatusRow, name: string): unknown {
  if (name in row) return row[name];
  const lower = name.toLowerCase();
  for (const key of Object.keys(row)) if (key.toLowerCase() === lower) return row[key];
  return undefined;
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  // a driver may answer bytes for a text column; runtime-neutral: no Buffer here
  return (value instanceof Uint8Array ? new TextDecoder().decode(value) : String(value)).trim();
}

function trimmed(value: unknown): string {
  const all = text(value).replace(/\s+/g, ' ');
  return all.length > ERROR_TEXT_MAX ? `${all.slice(0, ERROR_TEXT_MAX)}…` : all;
}
