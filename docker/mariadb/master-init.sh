#!/bin/sh
# Runs once, on a master only, when its container initialises the datadir. The entrypoint has
# already created database `shardgate` and user 'shardgate'@'%' (MARIADB_DATABASE / MARIADB_USER
# / MARIADB_PASSWORD). Everything here goes to the binlog, so the replica gets it by replication
# and never needs a write of its own (gtid_strict_mode).
# The lag probes need SHOW SLAVE STATUS (SLAVE MONITOR) and SHOW MASTER STATUS (BINLOG MONITOR;
# REPLICATION CLIENT is its alias since 10.5); MASTER_GTID_WAIT needs no privilege. PROCESS, as
# the local stack grants (stack/mariadb.ts): a write abandoned at its timeout is judged by its
# InnoDB transaction (information_schema.INNODB_TRX, src/db/mysql-node-set.ts); without it the
# API can only guess a row-lock wait from the thread's state.
# Runs on an empty datadir only: a node whose volume predates an edit here keeps its old grants.
set -eu
mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
GRANT REPLICATION CLIENT, BINLOG MONITOR, SLAVE MONITOR, PROCESS ON *.* TO 'shardgate'@'%';
CREATE USER IF NOT EXISTS '${REPL_USER}'@'%' IDENTIFIED BY '${REPL_PASSWORD}';
GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO '${REPL_USER}'@'%';
SQL
