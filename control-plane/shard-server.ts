/**
 * A connection to one server of a shard as the application's user (the password from the
 * shard's `passwordEnv` or SHARDGATE_DB_PASSWORD, as the API and `npm run migrate` do), bounded
 * in time: what `tenants move` and the shard checks of `shards …` query through.
 *
 * Failure modes, all as ctl-errors.ts classes:
 * - a login the server refuses (wrong password, unknown database) is a UserError (exit 1);
 * - a server that does not take the connection and log in within `connectTimeoutMs`, or whose
 *   connection fails or is lost (refused, reset, killed: mysql-errors.ts isConnectionError), is
 *   an UnreachableError (exit 2) naming the shard and address, never the password;
 * - a statement that gets no answer within `statementTimeoutMs` is an UnreachableError too
 *   (`… did not answer within N ms`). A frozen server (SIGSTOP, a stalled VM) keeps its TCP
 *   connections open and never answers: without that bound a call waits until it is resumed
 *   (an outside check: a move held its tenant read-only for 8.6 and 20.6 s that way).
 *   mysql2 answers a statement's `timeout` but keeps the connection busy with it, so the
 *   connection is closed then, its socket destroyed: a command on it answers the same error at
 *   once, and `end()` never waits for a server that does not answer;
 * - an SQL error is thrown as the server gave it.
 */
import { connect, type Socket } from 'node:net';
import { type Connection, createConnection, type QueryOptions } from 'mysql2/promise';
import { formatHostPort } from '../src/config/host-port.js';
import type { ShardConfig } from '../src/config/schema.js';
import { isConnectionError } from '../src/db/mysql-errors.js';
import { SET_SESSION_SQL_MODE } from '../src/db/session-sql-mode.js';
import { missingPasswordHint, shardPassword } from '../src/db/shard-password.js';
import type { Env } from '../src/env.js';
import { UnreachableError, UserError } from './ctl-errors.js';

export interface ServerAddress {
  host: string;
  port: number;
}

/** `host:port`: the only way a server is named in output */
export const addressOf = (a: ServerAddress) => formatHostPort(a.host, a.port);

/** a server of a shard that cannot be used: `server` its address, `reason` why (exit 2) */
export class ServerUnreachableError extends UnreachableError {
  constructor(
    readonly server: string,
    readonly reason: string,
    name: string,
  ) {
    super(`${name} ${reason}`);
  }
}

/** how long a server may take to accept a connection and log the user in, unless told otherwise */
export const CONNECT_TIMEOUT_MS = 5000;

export interface ShardServerBounds {
  /** the login's bound (CONNECT_TIMEOUT_MS) */
  connectTimeoutMs?: number;
  /**
   * every statement's bound, unless the statement gives its own `timeout` (a replica's wait for
   * a position); none: a statement waits as long as the server takes
   */
  statementTimeoutMs?: number;
}

/**
 * Why `error`, thrown by a statement or a login, means the server cannot be used (its words for
 * the UnreachableError), or undefined for an SQL error the server answered. `timeoutMs`: the
 * statement's bound, named when it ran out.
 */
export function unreachableReason(error: unknown, timeoutMs?: number): string | undefined {
  if (!isConnectionError(error)) return undefined;
  const e = error as { code?: string; message?: string };
  if (e.code === 'PROTOCOL_SEQUENCE_TIMEOUT')
    return `did not answer within ${timeoutMs === undefined ? 'its timeout' : `${timeoutMs} ms`}`;
  if (e.code === 'ETIMEDOUT' && timeoutMs !== undefined)
    return `did not answer within ${timeoutMs} ms (connect ETIMEDOUT)`;
  return `unreachable: ${(e.message ?? e.code ?? 'connection failed').split('\n')[0]}`;
}

export async function connectShardServer(
  env: Pick<Env, 'SHARDGATE_DB_USER' | 'SHARDGATE_DB_PASSWORD'>,
  shardId: string,
  shard: ShardConfig,
  server: ServerAddress,
  { connectTimeoutMs = CONNECT_TIMEOUT_MS, statementTimeoutMs }: ShardServerBounds = {},
): Promise<Connection> {
  const password = shardPassword(env, shard.passwordEnv);
  const name = `shard ${shardId} (${addressOf(server)})`;
  // the socket is ours, so that a connection given up on is destroyed outright (mysql2's own
  // destroy() only half-closes it, which a frozen server never completes)
  let socket: Socket | undefined;
  let connection: Connection;
  try {
    connection = await createConnection({
      host: server.host,
      port: server.port,
      user: env.SHARDGATE_DB_USER,
      password,
      database: shard.database,
      connectTimeout: connectTimeoutMs,
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      stream: () => {
        socket = connect({ host: server.host, port: server.port });
        socket.setNoDelay(true);
        return socket;
      },
    });
  } catch (error) {
    socket?.destroy();
    const code = (error as { code?: string }).code;
    const message = (error as Error).message.split('\n')[0];
    // the server answered (wrong password, unknown database): a user error, not an outage
    if (
      code === 'ER_ACCESS_DENIED_ERROR' ||
      code === 'ER_BAD_DB_ERROR' ||
      code === 'ER_DBACCESS_DENIED_ERROR'
    ) {
      const hint = code === 'ER_ACCESS_DENIED_ERROR' ? missingPasswordHint(password, shard.passwordEnv) : '';
      throw new UserError(`${name}: ${message}${hint}`);
    }
    throw new ServerUnreachableError(
      addressOf(server),
      code === 'ETIMEDOUT'
        ? `unreachable: no login within ${connectTimeoutMs} ms (connect ETIMEDOUT)`
        : `unreachable: ${message}`,
      name,
    );
  }
  bound(connection, socket!, addressOf(server), name, statementTimeoutMs);
  try {
    // rows are copied as values mysql2 escapes with backslashes (session-sql-mode.ts)
    await connection.query(SET_SESSION_SQL_MODE);
  } catch (error) {
    connection.destroy();
    throw error;
  }
  return connection;
}

/**
 * The connection's `query`, `end` and `destroy` made to keep the bounds of this file's header:
 * its own instance methods, mysql2's prototype untouched.
 */
function bound(
  connection: Connection,
  socket: Socket,
  server: string,
  name: string,
  statementTimeoutMs?: number,
): void {
  /** why the connection cannot be used any more, once it cannot */
  let lost: string | undefined;
  const unreachable = () => new ServerUnreachableError(server, lost!, name);
  const destroy = connection.destroy.bind(connection);
  const close = () => {
    destroy();
    socket.destroy();
  };
  // a connection lost while idle (its server killed between two statements): mysql2 reports it
  // as an 'error' event, which must not end the process; the next statement says it
  connection.on('error', (error: unknown) => {
    lost ??= unreachableReason(error) ?? `unreachable: ${(error as Error).message}`;
  });
  const query = connection.query.bind(connection) as (
    options: QueryOptions,
    values?: unknown,
  ) => Promise<unknown>;
  connection.query = (async (sql: string | QueryOptions, values?: unknown) => {
    if (lost !== undefined) throw unreachable();
    const options: QueryOptions = typeof sql === 'string' ? { sql } : { ...sql };
    options.timeout ??= statementTimeoutMs;
    try {
      return await query(options, values);
    } catch (error) {
      const reason = unreachableReason(error, options.timeout);
      if (reason === undefined) throw error;
      lost ??= reason;
      close();
      throw unreachable();
    }
  }) as Connection['query'];
  const end = connection.end.bind(connection);
  connection.end = async () => {
    if (lost === undefined) await end().catch(() => {});
    // the QUIT is written; a server that does not answer it must not keep the process alive
    socket.destroySoon();
    if (lost !== undefined) close();
  };
  connection.destroy = close;
}
