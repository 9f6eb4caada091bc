/**
 * The SQL that differs between MariaDB and MySQL, in one place (the API's sessions, the pools'
 * flavour detection and `shardgate-ctl tenants move` all use it). Driver-free: text only.
 * | need                       | MariaDB                                | MySQL                                  |
 * |----------------------------|----------------------------------------|----------------------------------------|
 * | master position            | @@GLOBAL.gtid_binlog_pos               | @@GLOBAL.gtid_executed                 |
 * | replica applied position   | @@GLOBAL.gtid_slave_pos                | @@GLOBAL.gtid_executed                 |
 * | wait until applied         | MASTER_GTID_WAIT(pos, seconds) = 0     | WAIT_FOR_EXECUTED_GTID_SET(set, s) = 0 |
 * | who wrote what (binlog)    | @@GLOBAL.gtid_binlog_state             | — (a GTID set names its servers)       |
 * | replication threads        | SHOW ALL SLAVES STATUS                 | SHOW REPLICA STATUS                    |
 * Each statement answers one row of one column, but the replication status (a row per connection).
 */
import type { ServerFlavour } from '../routing/gtid.js';

/** answers the server's version text, which `flavourOfVersion` reads */
export const VERSION_SQL = 'SELECT VERSION()';

/** MariaDB's version text says so (`10.11.6-MariaDB-0+deb12u1`); anything else is MySQL */
export function flavourOfVersion(version: string): ServerFlavour {
  return version.includes('MariaDB') ? 'mariadb' : 'mysql';
}

/** everything the server committed (`master`), or applied from its master (`replica`) */
export function positionSql(flavour: ServerFlavour, role: 'master' | 'replica'): string {
  if (flavour === 'mysql') return 'SELECT @@GLOBAL.gtid_executed';
  return role === 'master' ? 'SELECT @@GLOBAL.gtid_binlog_pos' : 'SELECT @@GLOBAL.gtid_slave_pos';
}

/**
 * MariaDB: the last sequence number of every (domain, server id) in the master's binlog, written
 * there or replicated; MySQL has no such need (its GTID sets name each server's UUID).
 */
export const BINLOG_STATE_SQL = 'SELECT @@GLOBAL.gtid_binlog_state';

/**
 * Parameters (position, seconds); answers 0 once the server has applied the position. Anything
 * else is "not applied": -1 (MariaDB) or 1 (MySQL) on timeout, NULL when an argument is NULL.
 */
export function waitSql(flavour: ServerFlavour): string {
  return flavour === 'mysql' ? 'SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)' : 'SELECT MASTER_GTID_WAIT(?, ?)';
}

/**
 * The replication threads' status, one row per connection (MariaDB: every named connection of a
 * multi-source replica too; MySQL: every channel); no row on a server that replicates from none.
 * MySQL's `SHOW REPLICA STATUS` needs 8.0.22+ (`SHOW SLAVE STATUS` is gone in 8.4); it spells the
 * columns `Replica_…`/`Source_…`, MariaDB `Slave_…`/`Master_…` (replication-stopped.ts reads
 * both). Needs SLAVE MONITOR (MariaDB ≥ 10.5) or REPLICATION CLIENT (MySQL): without it the server
 * answers errno 1227 (or 1142).
 */
export function replicationStatusSql(flavour: ServerFlavour): string {
  return flavour === 'mysql' ? 'SHOW REPLICA STATUS' : 'SHOW ALL SLAVES STATUS';
}

/**
 * The default replication connection's status (MariaDB; a named connection of a multi-source
 * replica is not in it) or MySQL's channels: `SHOW SLAVE STATUS` is gone in MySQL 8.4, so MySQL
 * is asked `SHOW REPLICA STATUS` (8.0.22+). For the control plane's checks of one replica.
 */
export function defaultReplicationStatusSql(flavour: ServerFlavour): string {
  return flavour === 'mysql' ? 'SHOW REPLICA STATUS' : 'SHOW SLAVE STATUS';
}
