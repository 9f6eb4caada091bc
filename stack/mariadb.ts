/**
 * MariaDB nodes of the local stack: a master and a GTID replica per shard (CONTRACT.md §2), each
 * with its own datadir and socket under `.stack/<name>/`.
 *
 * Contracts:
 * - `initDatadir` runs `mariadb-install-db` once (retried on a crash); a complete datadir is
 *   reused as is.
 * - row-based binlog with minimal row images (`binlog_row_image=MINIMAL`);
 * - masters are durable (`innodb_flush_log_at_trx_commit=1`, `sync_binlog=1`); replicas flush
 *   once a second (they re-fetch a lost tail from their master); every node runs its statements
 *   on MariaDB's thread pool (`threadPoolGroups`); buffers are small for a 2-core box; binlogs
 *   expire after 3 days.
 * - `setupMaster` (idempotent, on the master only, and only when not yet done as it is now): database `shardgate`, the application user
 *   @127.0.0.1 and @localhost (password from SHARDGATE_DB_PASSWORD) with ALL on shardgate.* plus
 *   the monitoring privileges the lag probes need (MariaDB ≥ 10.5 split them: BINLOG MONITOR =
 *   REPLICATION CLIENT for SHOW MASTER STATUS / BINARY LOGS, SLAVE MONITOR for SHOW SLAVE
 *   STATUS), a replication user (its password generated into `.stack/secrets.env`: stack-env.ts),
 *   and root@127.0.0.1 (no password, loopback only) for tests and tools, and for fault tests from
 *   outside the project (`STOP SLAVE` on a replica). All of it is written to the binlog, so each
 *   replica gets it by replication.
 * - `setupReplica`: `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos; START SLAVE` once, with
 *   `sql_log_bin=0`; the replica never writes a GTID of its own, so gtid_strict_mode holds and it
 *   could be promoted later. A replica already pointing at its master is only (re)started, or
 *   given the replication password when it holds another.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { mysqlLogin } from './probes.js';
import { startProcess, waitUntil } from './process-manager.js';
import { replicationPassword } from './stack-env.js';
import { type MariaDbNode, topology } from './topology.js';

const run = promisify(execFile);
const REPL_USER = 'repl';

export function nodeDir(node: MariaDbNode): string {
  return join(STATE_DIR, node.name);
}

export function socketPath(node: MariaDbNode): string {
  return join(nodeDir(node), 'mysqld.sock');
}

/**
 * Each node's own tmpdir: four bootstraps sharing /tmp (with the system MariaDB too) were seen to
 * crash mariadbd (signal 11 in ha_maria::drop_table while freeing a temporary table) or to lose
 * each other's `#sql-temptable-*` files.
 */
export function tmpDir(node: MariaDbNode): string {
  return join(nodeDir(node), 'tmp');
}

/**
 * Create the datadir with `mariadb-install-db` unless it is complete; true when it was created.
 * A failed bootstrap leaves a partial datadir: it is wiped and tried again, up to 3 times.
 */
export async function initDatadir(node: MariaDbNode): Promise<boolean> {
  const datadir = join(nodeDir(node), 'data');
  mkdirSync(tmpDir(node), { recursive: true });
  const complete = ['user.frm', 'global_priv.frm'].some((f) => existsSync(join(datadir, 'mysql', f)));
  if (complete) return false;
  for (let attempt = 1; ; attempt++) {
    rmSync(datadir, { recursive: true, force: true });
    mkdirSync(datadir, { recursive: true });
    try {
      await run(binary('mariadb-install-db'), [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--tmpdir=${tmpDir(node)}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--user=root',
      ]);
      return true;
    } catch (error) {
      if (attempt < 3) continue;
      const e = error as { stderr?: string };
      const lines = e.stderr?.trim().split('\n').slice(-5).join('\n') ?? String(error);
      throw new Error(`mariadb-install-db for ${node.name} failed 3 times; last attempt:\n${lines}`);
    }
  }
}

/**
 * Thread groups of each node's thread pool: the box's cores shared among the shards (a shard's
 * master is busy with writes, its replicas with reads), at least one.
 */
export function threadPoolGroups(cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / topology.shards.length));
}

export function startMariaDb(node: MariaDbNode, { replica }: { replica: boolean }): number {
  const dir = nodeDir(node);
  return startProcess({
    name: node.name,
    command: binary('mariadbd'),
    args: [
      '--no-defaults',
      `--datadir=${join(dir, 'data')}`,
      `--socket=${socketPath(node)}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--tmpdir=${tmpDir(node)}`,
      `--port=${node.port}`,
      `--bind-address=${topology.host}`,
      `--server-id=${node.serverId}`,
      '--user=root',
      '--log-bin=mysql-bin',
      '--binlog-format=ROW',
      // an UPDATE logs the primary key and the changed columns, not both images of the whole row:
      // the outbox's marks (sent_at, delivered_at) no longer carry each mail's payload twice into
      // the binlog and through every replica (bench/ROUNDS.md, seventh round: +4–6 % writes/s
      // with email). Every table has a primary key, which the replicas apply by.
      '--binlog-row-image=MINIMAL',
      '--log-slave-updates=1',
      '--gtid-strict-mode=1',
      '--binlog-expire-logs-seconds=259200',
      '--max-binlog-size=64M',
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=64M',
      '--innodb-log-file-size=48M',
      // masters: every commit durable (fsync of redo log and binlog); replicas can re-fetch what
      // they lose from their master (gtid_slave_pos commits with the data in InnoDB), so they
      // flush once a second and spare the disk
      ...(replica
        ? ['--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0']
        : ['--innodb-flush-log-at-trx-commit=1', '--sync-binlog=1']),
      // the statements are short and come from pooled connections: MariaDB's thread pool runs
      // them on a few threads instead of waking one thread per connection for each statement
      // (bench/ROUNDS.md, on 2 cores: borrow + return +9–23 %, reads from a replica +15–30 %).
      // One thread group per node and share of the cores; a statement that waits (a row lock, a
      // commit's fsync, MASTER_GTID_WAIT) or runs longer than the stall limit lets another
      // thread of its group take the next ones.
      '--thread-handling=pool-of-threads',
      `--thread-pool-size=${threadPoolGroups()}`,
      '--thread-pool-stall-limit=50',
      '--max-connections=300',
      '--performance-schema=OFF',
      '--skip-log-error',
      ...(replica ? ['--read-only=1', '--skip-slave-start=0', '--relay-log=relay-bin'] : []),
    ],
  });
}

export async function waitForMariaDb(node: MariaDbNode, timeoutMs = 60_000): Promise<void> {
  await waitUntil(`${node.name} on :${node.port}`, () => mysqlLogin(node.port), timeoutMs, node.name);
}

/**
 * Run statements as root over the node's socket; tab-separated output (`names`: with a header).
 * The statements go on the client's standard input, not its command line: they can carry
 * passwords (`IDENTIFIED BY`, `MASTER_PASSWORD`), which `ps` would show any local user; and the
 * client does not print a failing statement (`--skip-print-query-on-error`; on by default in
 * batch mode), so an error names the node and the server's message, never the statement.
 */
export function sql(node: MariaDbNode, statements: string, { names = false } = {}): Promise<string> {
  const flags = names ? ['-B'] : ['-N', '-B'];
  return new Promise((resolve, reject) => {
    const child = spawn(
      binary('mariadb'),
      ['--no-defaults', `--socket=${socketPath(node)}`, '-uroot', '--skip-print-query-on-error', ...flags],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 30_000);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${node.name}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(stdout);
      const why = timedOut
        ? 'no answer within 30 s'
        : stderr.trim() || `mariadb client ended with ${signal ?? `exit code ${code}`}`;
      reject(new Error(`${node.name}: ${why}`));
    });
    child.stdin.on('error', () => {}); // a client that ended early: its exit says why
    child.stdin.end(statements);
  });
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * Idempotent, and quiet when there is nothing to do: the statements go to the binlog (that is how
 * the replicas get them), so they run only when `.stack/<node>/setup.sha256` does not match what
 * they would be — a new datadir, a changed password, a changed setup, or a setup cut off before
 * its end.
 */
export async function setupMaster(node: MariaDbNode, dbPassword: string): Promise<boolean> {
  const statements = masterSetupSql(dbPassword);
  const marker = join(nodeDir(node), 'setup.sha256');
  const digest = createHash('sha256').update(statements).digest('hex');
  if (existsSync(marker) && readFileSync(marker, 'utf8').trim() === digest) return false;
  await sql(node, statements);
  writeFileSync(marker, `${digest}\n`, { mode: 0o600 });
  return true;
}

function masterSetupSql(dbPassword: string): string {
  const db = topology.database;
  const user = topology.dbUser;
  const grants = ['127.0.0.1', 'localhost']
    .map(
      (host) => `CREATE USER IF NOT EXISTS '${user}'@'${host}' IDENTIFIED BY ${quote(dbPassword)};
ALTER USER '${user}'@'${host}' IDENTIFIED BY ${quote(dbPassword)};
GRANT ALL PRIVILEGES ON \`${db}\`.* TO '${user}'@'${host}';
GRANT REPLICATION CLIENT, BINLOG MONITOR, SLAVE MONITOR, PROCESS ON *.* TO '${user}'@'${host}';`,
    )
    .join('\n');
  return `CREATE DATABASE IF NOT EXISTS \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
${grants}
CREATE USER IF NOT EXISTS '${REPL_USER}'@'127.0.0.1' IDENTIFIED BY ${quote(replicationPassword())};
ALTER USER '${REPL_USER}'@'127.0.0.1' IDENTIFIED BY ${quote(replicationPassword())};
GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO '${REPL_USER}'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;`;
}

export interface ReplicationStatus {
  masterPort: number | undefined;
  io: string;
  sql: string;
  secondsBehind: string;
  lastError: string;
}

/** `SHOW SLAVE STATUS` of a replica; undefined when it has no master configured. */
export async function replicationStatus(replica: MariaDbNode): Promise<ReplicationStatus | undefined> {
  const out = await sql(replica, 'SHOW SLAVE STATUS\\G', { names: true });
  const field = (name: string) => new RegExp(`^\\s*${name}: ?(.*)$`, 'm').exec(out)?.[1]?.trim() ?? '';
  if (!field('Master_Port')) return undefined;
  return {
    masterPort: Number(field('Master_Port')) || undefined,
    io: field('Slave_IO_Running'),
    sql: field('Slave_SQL_Running'),
    secondsBehind: field('Seconds_Behind_Master'),
    lastError: field('Last_SQL_Error') || field('Last_IO_Error'),
  };
}

/**
 * Point the replica at its master once; later `up`s find it configured and only start it. The
 * replication password it was given is remembered (`.stack/<replica>/repl-password.sha256`): when
 * it is not the one setupMaster set now (a stack set up when the password was a fixed one, or an
 * `up` cut off between the master's setup and this), the replica gets the new one, keeping its
 * position; else it would fail at its next reconnect, for good.
 */
export async function setupReplica(replica: MariaDbNode, master: MariaDbNode): Promise<void> {
  const password = replicationPassword();
  const marker = join(nodeDir(replica), 'repl-password.sha256');
  const digest = createHash('sha256').update(password).digest('hex');
  const given = existsSync(marker) && readFileSync(marker, 'utf8').trim() === digest;
  const status = await replicationStatus(replica);
  if (status?.masterPort === master.port) {
    if (!given)
      await sql(replica, `STOP SLAVE; CHANGE MASTER TO MASTER_PASSWORD=${quote(password)}; START SLAVE;`);
    else if (status.io !== 'Yes' || status.sql !== 'Yes') await sql(replica, 'START SLAVE');
  } else {
    await sql(
      replica,
      `SET SESSION sql_log_bin=0;
       STOP SLAVE;
       CHANGE MASTER TO MASTER_HOST='${topology.host}', MASTER_PORT=${master.port}, MASTER_USER='${REPL_USER}',
         MASTER_PASSWORD=${quote(password)}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
       START SLAVE;`,
    );
  }
  if (!given) writeFileSync(marker, `${digest}\n`, { mode: 0o600 });
}
