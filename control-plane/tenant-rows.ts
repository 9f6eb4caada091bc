/**
 * A tenant's rows on one shard, as `tenants move` copies, checks and deletes them: every row of
 * the tables keyed by `tenant_id` that make up the tenant's library, and its idempotency keys
 * (TENANT_TABLES). The outbox
 * is not among them: its rows are mails the email worker delivers from the shard they were
 * written on (it reads every shard's outbox), so a pending mail is sent once, from there.
 *
 * Rows are read in primary-key order, in pages of PAGE_ROWS (keyset paging), with
 * `dateStrings` so a DATETIME goes from one server to the other as the text it is (no time-zone
 * round trip), and every page is hashed as it passes: two reads of the same rows give the same
 * digest, so the copy can be checked against the source after the fact.
 *
 * Failure modes: the connections come from shard-server.ts: a server that cannot be reached, or
 * does not answer a statement within the connection's bound, is an UnreachableError (exit 2)
 * naming the shard and address, never the password; an SQL error is thrown as it is, for the
 * caller to undo its step.
 */

import { createHash } from 'node:crypto';
import type { ResultSetHeader } from 'mysql2';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  BINLOG_STATE_SQL,
  defaultReplicationStatusSql,
  flavourOfVersion,
  positionSql,
  replicationStatusSql,
  VERSION_SQL,
  waitSql,
} from '../src/db/flavour-sql.js';
import type { ServerFlavour } from '../src/routing/gtid.js';
import { followsMaster } from './replica-follows.js';

/** the tables of a tenant's library, each with its primary key after `tenant_id` */
export const TENANT_TABLES = [
  { name: 'tenant_state', key: null },
  { name: 'members', key: 'id' },
  { name: 'books', key: 'id' },
  { name: 'loans', key: 'id' },
  // a retry of a write after the move must still find the key its first attempt claimed
  { name: 'idempotency_keys', key: 'idem_key' },
] as const;

export type TableName = (typeof TENANT_TABLES)[number]['name'];

const PAGE_ROWS = 1000;

/** rows and a digest of their content, per table */
export type TableDigests = Record<TableName, { rows: number; sha256: string }>;

// the connection itself, bounded in time, is shard-server.ts's; re-exported for the commands that
// take it from here
export { addressOf, connectShardServer, type ServerAddress } from './shard-server.js';

/**
 * Which database a connection reached, as the server itself says: its host name, port, data
 * directory and the schema. Two shards whose addresses differ as written (`localhost` and
 * `127.0.0.1`) but that reach the same database answer the same.
 */
export async function databaseIdentity(connection: Connection): Promise<string> {
  const [rows] = await connection.query<RowDataPacket[]>(
    'SELECT @@hostname AS h, @@port AS p, @@datadir AS d, DATABASE() AS db',
  );
  const r = rows[0];
  return r ? `${r.h}:${r.p}:${r.d}:${r.db}` : '';
}

/** MariaDB or MySQL: they name the replication position and its wait differently */
async function flavourOf(connection: Connection): Promise<ServerFlavour> {
  const [rows] = await connection.query<RowDataPacket[]>({ sql: VERSION_SQL, rowsAsArray: true });
  return flavourOfVersion(String((rows as unknown[][])[0]?.[0] ?? ''));
}

/**
 * the first column of the first row of `sql`'s answer; `timeout`: the statement's own bound, in
 * place of its connection's (shard-server.ts)
 */
async function scalar(
  connection: Connection,
  sql: string,
  params: unknown[] = [],
  timeout?: number,
): Promise<unknown> {
  const [rows] = await connection.query<RowDataPacket[]>(
    { sql, rowsAsArray: true, ...(timeout === undefined ? {} : { timeout }) },
    params,
  );
  return (rows as unknown as unknown[][])[0]?.[0];
}

/**
 * Walk `table`'s rows of `tenantId` in key order, page by page, giving each page to `onPage`;
 * `locking` reads them with shared locks (inside the caller's transaction), which waits for a
 * write that holds one of them and keeps new rows out of the tenant's key range until the
 * caller's transaction ends.
 */
async function eachPage(
  connection: Connection,
  table: (typeof TENANT_TABLES)[number],
  tenantId: string,
  locking: boolean,
  onPage: (rows: RowDataPacket[]) => Promise<void> | void,
): Promise<void> {
  const lock = locking ? ' LOCK IN SHARE MODE' : '';
  if (table.key === null) {
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT * FROM \`${table.name}\` WHERE tenant_id = ?${lock}`,
      [tenantId],
    );
    if (rows.length > 0) await onPage(rows);
    return;
  }
  let after = '';
  for (;;) {
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT * FROM \`${table.name}\` WHERE tenant_id = ? AND \`${table.key}\` > ? ORDER BY \`${table.key}\` LIMIT ${PAGE_ROWS}${lock}`,
      [tenantId, after],
    );
    if (rows.length === 0) return;
    await onPage(rows);
    if (rows.length < PAGE_ROWS) return;
    after = String(rows.at(-1)![table.key]);
  }
}

function emptyDigests(): { digests: TableDigests; hashes: Map<TableName, ReturnType<typeof createHash>> } {
  const digests = {} as TableDigests;
  const hashes = new Map<TableName, ReturnType<typeof createHash>>();
  for (const t of TENANT_TABLES) {
    digests[t.name] = { rows: 0, sha256: '' };
    hashes.set(t.name, createHash('sha256'));
  }
  return { digests, hashes };
}

function hashRows(hash: ReturnType<typeof createHash>, rows: RowDataPacket[]): void {
  for (const row of rows) hash.update(`${JSON.stringify(Object.entries(row))}\n`);
}

/** The tenant's rows on this server: counts and digests (a plain, non-locking read). */
export async function digestTenant(connection: Connection, tenantId: string): Promise<TableDigests> {
  const { digests, hashes } = emptyDigests();
  for (const table of TENANT_TABLES) {
    await eachPage(connection, table, tenantId, false, (rows) => {
      digests[table.name].rows += rows.length;
      hashRows(hashes.get(table.name)!, rows);
    });
    digests[table.name].sha256 = hashes.get(table.name)!.digest('hex');
  }
  return digests;
}

/** How many rows of the tenant this server holds, all tables together. */
export async function countTenantRows(connection: Connection, tenantId: string): Promise<number> {
  let total = 0;
  for (const table of TENANT_TABLES) {
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS n FROM \`${table.name}\` WHERE tenant_id = ?`,
      [tenantId],
    );
    total += Number(rows[0]?.n ?? 0);
  }
  return total;
}

/**
 * Copy every row of the tenant from `source` to `target` in one transaction on each: the source
 * read with shared locks (a write still in flight there finishes first), the target written in
 * one transaction that first deletes whatever rows of the tenant it held. Either the whole copy
 * commits on the target or nothing does. Answers what was copied (as digestTenant would of the
 * source at that moment) and the target's replication position right after its COMMIT.
 *
 * A failure before the target's COMMIT was sent leaves nothing there (the transaction is rolled
 * back, or dies with its connection). `onCommitSent` is called right before the COMMIT goes out:
 * from then on a failure (the target killed or frozen at its COMMIT, or before it answered the
 * position) may leave the whole copy committed there, and the caller must count with it.
 */
export async function copyTenant(
  source: Connection,
  target: Connection,
  tenantId: string,
  { onCommitSent }: { onCommitSent?: () => void } = {},
): Promise<{ digests: TableDigests; position: string }> {
  const { digests, hashes } = emptyDigests();
  await source.query('START TRANSACTION');
  await target.query('START TRANSACTION');
  try {
    for (const table of TENANT_TABLES) {
      await target.query(`DELETE FROM \`${table.name}\` WHERE tenant_id = ?`, [tenantId]);
    }
    for (const table of TENANT_TABLES) {
      await eachPage(source, table, tenantId, true, async (rows) => {
        const columns = Object.keys(rows[0]!);
        const list = columns.map((c) => `\`${c}\``).join(', ');
        await target.query(`INSERT INTO \`${table.name}\` (${list}) VALUES ?`, [
          rows.map((row) => columns.map((c) => row[c])),
        ]);
        digests[table.name].rows += rows.length;
        hashRows(hashes.get(table.name)!, rows);
      });
      digests[table.name].sha256 = hashes.get(table.name)!.digest('hex');
    }
    onCommitSent?.();
    await target.query('COMMIT');
  } catch (error) {
    await target.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await source.query('COMMIT').catch(() => {});
  }
  return { digests, position: await masterPosition(target) };
}

/** Delete every row of the tenant on this server, in batches of PAGE_ROWS (each its own commit). */
export async function deleteTenantRows(
  connection: Connection,
  tenantId: string,
): Promise<Record<TableName, number>> {
  const deleted = {} as Record<TableName, number>;
  // children first: nothing is left that names a deleted row, should this stop half-way
  for (const table of [...TENANT_TABLES].reverse()) {
    deleted[table.name] = 0;
    for (;;) {
      const [result] = await connection.query<ResultSetHeader>(
        `DELETE FROM \`${table.name}\` WHERE tenant_id = ? LIMIT ${PAGE_ROWS}`,
        [tenantId],
      );
      deleted[table.name] += result.affectedRows;
      if (result.affectedRows < PAGE_ROWS) break;
    }
  }
  return deleted;
}

/** The master's whole replication position (everything it committed so far). */
/**
 * Whether the server's replication threads both run (`SHOW SLAVE STATUS`, MySQL's `SHOW REPLICA STATUS`: MariaDB and MySQL up
 * to 8.0 name them `Slave_IO_Running` / `Slave_SQL_Running`, MySQL 8.0.22+ also `Replica_…`);
 * a server with no replication configured answers no row: not replicating. What is not running
 * is named, e.g. `Slave_SQL_Running: No`.
 */
export async function replicationStopped(connection: Connection): Promise<string | undefined> {
  const [rows] = await connection.query<RowDataPacket[]>(
    defaultReplicationStatusSql(await flavourOf(connection)),
  );
  const row = rows[0];
  if (!row) return 'no replication configured';
  const stopped: string[] = [];
  for (const thread of ['IO', 'SQL']) {
    const name = `Slave_${thread}_Running` in row ? `Slave_${thread}_Running` : `Replica_${thread}_Running`;
    const value = String(row[name] ?? '');
    if (value !== 'Yes') stopped.push(`${name}: ${value || '?'}`);
  }
  return stopped.length > 0 ? stopped.join(', ') : undefined;
}

/** everything the master committed so far */
export async function masterPosition(connection: Connection): Promise<string> {
  return (await positionOf(connection, 'master')).position;
}

/** the server's position as `role` (flavour-sql.ts positionSql), and the flavour it is written in */
async function positionOf(
  connection: Connection,
  role: 'master' | 'replica',
): Promise<{ flavour: ServerFlavour; position: string }> {
  const flavour = await flavourOf(connection);
  return { flavour, position: String((await scalar(connection, positionSql(flavour, role))) ?? '') };
}

/** What `replicaFollows` read (the replica's position first) and its verdict. */
export interface FollowCheck {
  replica: string;
  master: string;
  /**
   * replica-follows.ts followsMaster: false when the replica has applied transactions the master
   * does not have; undefined when the positions cannot be compared (a text that is not a
   * position, or a MariaDB server and a MySQL one)
   */
  follows: boolean | undefined;
  /**
   * the server has no replication configured (replicationConfigured): a master, or a
   * stand-alone server, whose empty applied position is contained in any master's; `follows` is
   * false then (an outside check added shard-2's master as shard-1's replica: exit 0, no warning)
   */
  notReplicating?: true;
}

/**
 * Does the server on `replica` replicate from the one on `master`? Checks that it replicates at
 * all, then reads its applied position, THEN the master's committed one: in that order a replica
 * of that master is always contained in it (replica-follows.ts). SQL errors are thrown as they
 * are.
 */
export async function replicaFollows(replica: Connection, master: Connection): Promise<FollowCheck> {
  const notReplicating = (await replicationConfigured(replica)) === false;
  const r = await positionOf(replica, 'replica');
  const m = await positionOf(master, 'master');
  // read after the master's position: it holds at least what that names
  const state = m.flavour === 'mariadb' ? String((await scalar(master, BINLOG_STATE_SQL)) ?? '') : undefined;
  if (notReplicating) return { replica: r.position, master: m.position, follows: false, notReplicating };
  const follows =
    r.flavour === m.flavour ? followsMaster(r.position, m.position, r.flavour, state) : undefined;
  return { replica: r.position, master: m.position, follows };
}

/**
 * Whether the server has any replication configured: MariaDB's every connection, named ones of a
 * multi-source replica included (SHOW ALL SLAVES STATUS), MySQL's every channel. Undefined when
 * the account may not ask (SLAVE MONITOR / REPLICATION CLIENT missing): the position check alone
 * judges then, as before this check existed.
 */
async function replicationConfigured(connection: Connection): Promise<boolean | undefined> {
  const sql = replicationStatusSql(await flavourOf(connection));
  try {
    const [rows] = await connection.query<RowDataPacket[]>(sql);
    return rows.length > 0;
  } catch (error) {
    const errno = (error as { errno?: number }).errno;
    // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR
    if (errno === 1227 || errno === 1142) return undefined;
    throw error;
  }
}

/**
 * Why a replica does not follow its master (`follows` false): not replicating at all, or ahead of
 * it; for the messages of add-replica, set-master and tenants move.
 */
export function notFollowingReason(replica: string, master: string, check: FollowCheck): string {
  return check.notReplicating
    ? `${replica} is not a replica: it has no replication configured (SHOW SLAVE STATUS answers no row), so it does not replicate from master ${master}`
    : `replica ${replica} has applied transactions master ${master} does not have ${followPositions(check)}`;
}

/** `(replica 0-11-272, master 0-21-107)`: the two positions a FollowCheck read, for a message */
export function followPositions(check: FollowCheck): string {
  return `(replica ${check.replica || 'empty'}, master ${check.master || 'empty'})`;
}

/** how much longer than its wait the server may take to answer a wait for a position */
export const WAIT_ANSWER_GRACE_MS = 1000;

/**
 * True once this replica has applied `position`, waiting at most `timeoutMs` (at least 0.1 s: a
 * wait of 0 is no wait on MariaDB but an endless one on MySQL). The wait's statement is bounded
 * by `timeoutMs` + WAIT_ANSWER_GRACE_MS, whatever its connection's bound.
 */
export async function replicaApplied(
  connection: Connection,
  position: string,
  timeoutMs: number,
): Promise<boolean> {
  if (position === '') return true;
  const waitMs = Math.max(timeoutMs, 100);
  const sql = waitSql(await flavourOf(connection));
  return (
    Number(await scalar(connection, sql, [position, waitMs / 1000], waitMs + WAIT_ANSWER_GRACE_MS)) === 0
  );
}

/** `1 tenant_state row, 12 members, 40 books, 1 loan, 0 idempotency keys` */
export function describeCounts(counts: Record<TableName, number>): string {
  const names: Record<TableName, [string, string]> = {
    tenant_state: ['tenant_state row', 'tenant_state rows'],
    members: ['member', 'members'],
    books: ['book', 'books'],
    loans: ['loan', 'loans'],
    idempotency_keys: ['idempotency key', 'idempotency keys'],
  };
  return TENANT_TABLES.map((t) => `${counts[t.name]} ${names[t.name][counts[t.name] === 1 ? 0 : 1]}`).join(
    ', ',
  );
}

/** The tables whose rows or content differ between two digests (empty: the same rows). */
export function differingTables(a: TableDigests, b: TableDigests): TableName[] {
  return TENANT_TABLES.filter(
    (t) => a[t.name].rows !== b[t.name].rows || a[t.name].sha256 !== b[t.name].sha256,
  ).map((t) => t.name);
}
