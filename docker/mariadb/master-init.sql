-- Runs once when a master container initialises its datadir (database and app user come from
-- MARIADB_DATABASE / MARIADB_USER / MARIADB_PASSWORD).
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl-compose';
GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO 'repl'@'%';
GRANT REPLICATION CLIENT, BINLOG MONITOR, SLAVE MONITOR ON *.* TO 'shardgate'@'%';
