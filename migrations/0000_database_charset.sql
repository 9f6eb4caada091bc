-- Custom SQL migration file, put your code below! --
-- Text in every table is utf8mb4: a MariaDB started with --no-defaults would create latin1 tables.
-- Without a name, ALTER DATABASE applies to the connection's database, whatever a shard calls it.
ALTER DATABASE CHARACTER SET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
