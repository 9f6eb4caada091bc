/**
 * MariaDB nodes of the local stack: a master and a GTID replica per shard (CONTRACT.md §2).
 * Each node has its own datadir under `.stack/<name>/`. Setup is idempotent:
 * - master: database `shardgate`, the application user (password from SHARDGATE_DB_PASSWORD,
 *   stack default `shardgate`), a replication user, and root@127.0.0.1 for tests and tools —
 *   all written to the binlog, so the replica gets them by replication;
 * - replica: `read_only=1`; `CHANGE MASTER TO … MASTER_USE_GTID=slave_pos` + `START SLAVE` once.
 * The replica never writes local GTIDs (gtid_strict_mode stays consistent).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STATE_DIR } from './paths.js';
import { portOpen, startProcess, waitUntil } from './process-manager.js';
import { type MariaDbNode, topology } from './topology.js';

const run = promisify(execFile);
const REPL_USER = 'repl';
const REPL_PASSWORD = 'repl-local-stack';

export function nodeDir(node: MariaDbNode): string {
  return join(STATE_DIR, node.name);
}

export function socketPath(node: MariaDbNode): string {
  return join(nodeDir(node), 'mysqld.sock');
}

/**
 * Initialise a node's datadir once. Each node gets its own tmpdir: four bootstraps sharing /tmp
 * were seen to crash mariadbd (signal 11 in ha_maria::drop_table while freeing a temporary
 * table). A failed bootstrap leaves a partial datadir, which is removed before one more try.
 */
export async function initDatadir(node: MariaDbNode): Promise<boolean> {
  const datadir = join(nodeDir(node), 'data');
  if (
    existsSync(join(datadir, 'mysql', 'user.frm')) ||
    existsSync(join(datadir, 'mysql', 'global_priv.frm'))
  ) {
    return false;
  }
  const tmpdir = join(nodeDir(node), 'tmp');
  for (let attempt = 1; ; attempt++) {
    rmSync(datadir, { recursive: true, force: true });
    mkdirSync(datadir, { recursive: true });
    mkdirSync(tmpdir, { recursive: true });
    try {
      await run('mariadb-install-db', [
        '--no-defaults',
        `--datadir=${datadir}`,
        `--tmpdir=${tmpdir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        '--user=root',
      ]);
      return true;
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

export function startMariaDb(node: MariaDbNode, { replica }: { replica: boolean }): number {
  const dir = nodeDir(node);
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  return startProcess({
    name: node.name,
    command: 'mariadbd',
    args: [
      '--no-defaults',
      `--datadir=${join(dir, 'data')}`,
      `--socket=${socketPath(node)}`,
      `--pid-file=${join(dir, 'mysqld.pid')}`,
      `--tmpdir=${join(dir, 'tmp')}`,
      `--port=${node.port}`,
      `--bind-address=${topology.host}`,
      `--server-id=${node.serverId}`,
      '--user=root',
      '--log-bin=mysql-bin',
      '--binlog-format=ROW',
      '--log-slave-updates=1',
      '--gtid-strict-mode=1',
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=64M',
      '--innodb-log-file-size=48M',
      // masters: every commit durable (fsync of redo log and binlog); replicas can re-fetch what
      // they lose from their master, so they flush once a second and spare the disk
      ...(replica
        ? ['--innodb-flush-log-at-trx-commit=2', '--sync-binlog=0']
        : ['--innodb-flush-log-at-trx-commit=1', '--sync-binlog=1']),
      '--max-connections=300',
      '--performance-schema=OFF',
      '--skip-log-error',
      ...(replica ? ['--read-only=1', '--skip-slave-start=0', '--relay-log=relay-bin'] : []),
    ],
  });
}

export async function waitForMariaDb(node: MariaDbNode, timeoutMs = 60_000): Promise<void> {
  await waitUntil(`${node.name} on :${node.port}`, () => portOpen(node.port), timeoutMs, node.name);
}

export async function sql(node: MariaDbNode, statements: string, { names = false } = {}): Promise<string> {
  const flags = names ? ['-B'] : ['-N', '-B'];
  const { stdout } = await run('mariadb', [
    '--no-defaults',
    `--socket=${socketPath(node)}`,
    '-uroot',
    ...flags,
    '-e',
    statements,
  ]);
  return stdout;
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function setupMaster(node: MariaDbNode, dbPassword: string): Promise<void> {
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
  await sql(
    node,
    `CREATE DATABASE IF NOT EXISTS \`${db}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
${grants}
CREATE USER IF NOT EXISTS '${REPL_USER}'@'127.0.0.1' IDENTIFIED BY ${quote(REPL_PASSWORD)};
GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO '${REPL_USER}'@'127.0.0.1';
CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;`,
  );
}

/** Point the replica at its master once; later `up`s find it configured and leave it alone. */
export async function setupReplica(replica: MariaDbNode, master: MariaDbNode): Promise<void> {
  const status = await sql(replica, 'SHOW SLAVE STATUS\\G', { names: true });
  if (status.includes(`Master_Port: ${master.port}`)) {
    if (!/Slave_IO_Running: Yes/.test(status) || !/Slave_SQL_Running: Yes/.test(status)) {
      await sql(replica, 'START SLAVE');
    }
    return;
  }
  await sql(
    replica,
    `CHANGE MASTER TO MASTER_HOST='${topology.host}', MASTER_PORT=${master.port}, MASTER_USER='${REPL_USER}',
     MASTER_PASSWORD=${quote(REPL_PASSWORD)}, MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
     START SLAVE;`,
  );
}
