/**
 * The `sql_mode` every MySQL/MariaDB connection of shardgate that sends values sets for its
 * session, whatever the server's global one is (the instances' pools, the outbox's,
 * `shardgate-ctl`'s row copies, migrations; not the short connection that stops a hung write's
 * thread, which sends numbers only).
 *
 * Why: mysql2 (under Drizzle and StatementBatcher) puts values into the SQL text itself, escaping
 * a quote with a backslash. A server whose `sql_mode` holds `NO_BACKSLASH_ESCAPES` (a setting a
 * DBA may choose) reads that backslash as a plain character, so a `'` in any value ends its string
 * literal: `GET /v1/books?author=x') UNION … FROM members -- ` answered every tenant's members as
 * books (an outside check, against MariaDB with that mode). `ANSI_QUOTES` would likewise turn a
 * double-quoted string into a name. Pinning the whole mode, not only removing those, also keeps
 * what the code relies on: `STRICT_TRANS_TABLES` (a value too long or out of range is an error,
 * never cut short). Every flag below exists on MariaDB ≥ 10.2 and MySQL 8.
 *
 * Failure mode: a connection on which this statement fails must not be used (the pools destroy
 * it, one-shot connections throw).
 */
export const SESSION_SQL_MODE = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/**
 * The session's time zone, pinned with the mode: every time column is `DATETIME(3)` (no zone),
 * written by Drizzle as UTC text, and the worker compares those with `NOW(3)` (`available_at <=
 * NOW(3)`, the lost-mail sweep's age, the retention), which is in the session's zone. On a server
 * whose zone is not UTC (`SYSTEM` on a host set to another zone, or a DBA's `time_zone`) a
 * master 5 h west of UTC would hold every mail 5 h (a review; the stack's servers run in UTC,
 * so nothing showed it). `+00:00` needs no time zone tables.
 */
export const SESSION_TIME_ZONE = '+00:00';

/**
 * the statement (sql_mode and time_zone), also as the first assignments of a longer `SET
 * SESSION` (sessionInitSql)
 */
export const SET_SESSION_SQL_MODE = `SET SESSION sql_mode = '${SESSION_SQL_MODE}', time_zone = '${SESSION_TIME_ZONE}'`;
