#!/bin/sh
# Runs once, on a replica, when its container initialises the datadir: follow the master by GTID
# from the very start of its binlog (gtid_slave_pos is empty), so the database, the application
# user and its grants arrive by replication. Nothing here is written to the replica's own binlog.
# REPL_USER / REPL_PASSWORD are the ones master-init.sh created on the master.
set -eu
mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
SET SESSION sql_log_bin=0;
CHANGE MASTER TO MASTER_HOST='${MASTER_HOST}', MASTER_PORT=${MASTER_PORT}, MASTER_USER='${REPL_USER}',
  MASTER_PASSWORD='${REPL_PASSWORD}', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
START SLAVE;
SQL
