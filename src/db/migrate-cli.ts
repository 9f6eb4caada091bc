/**
 * `npm run migrate`: applies migrations/ (drizzle-kit output) to the master of every shard named
 * by `shards/*` in etcd; replicas receive the DDL by replication.
 *
 * Idempotent: drizzle's migrator records applied migrations in `__drizzle_migrations` and skips
 * them. Two runs at once against one master are serialised by `GET_LOCK('shardgate.migrate')` on
 * the migrating connection. MySQL DDL is not transactional: a migration that fails half-way must
 * be repaired by hand (the error names the shard, the server's message and the first migration
 * not recorded there; docs/operations.md says how).
 *
 * `--shard <id>` (repeatable) migrates only the shards named; the others in etcd are listed as not
 * migrated and neither their values nor their servers are checked (`npm run stack -- up` names the
 * topology's shards, so a shard some test or operator left in etcd does not stop the stack).
 *
 * Every shard is tried even when one before it failed: the shards are separate databases, and one
 * unreachable master must not leave the others unmigrated. A shard pointed at a server outside
 * SHARDGATE_DB_HOSTS is refused before anything runs (nothing migrated), as is an invalid value.
 *
 * Exit codes: 0 done; 1 a shard failed, the shard config is invalid or the arguments are wrong;
 * 2 etcd unreachable (1 when it refuses the etcd credentials). Every failure prints ONE line naming what failed (one per failed shard).
 */

import { connect, type Socket } from 'node:net';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { type Connection, type ConnectionOptions, createConnection } from 'mysql2/promise';
import { configValueText } from '../config/config-value-text.js';
import { refusedServers } from '../config/db-hosts.js';
import { etcdAuthRefusal } from '../config/etcd-auth-refusal.js';
import { createEtcdClient } from '../config/etcd-client.js';
import { parseConfigKey, type ShardConfig } from '../config/schema.js';
import { type Env, EnvError, etcdCredentials, parseEnv } from '../env.js';
import { watchLiveness } from './liveness-watch.js';
import { findMigrationsFolder, migrationJournal } from './migrations-folder.js';
import { parseShardArgs } from './parse-shard-args.js';
import { pendingMigrations } from './pending-migrations.js';
import { SET_SESSION_SQL_MODE } from './session-sql-mode.js';
import { missingPasswordHint, shardPassword } from './shard-password.js';

class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Who holds `shardgate.migrate`, for the refusal: the lock is the server's, so the holder may be
 * migrating another database there (an outside check found the bare "another migration" vague)
 */
async function lockHolder(connection: Connection): Promise<string> {
  try {
    const [rows] = await connection.query<[]>({
      sql: "SELECT p.ID, p.USER, p.HOST, p.DB, p.TIME FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK('shardgate.migrate')",
      rowsAsArray: true,
    });
    const row = (rows as unknown[][])[0];
    if (!row) return '';
    const [threadId, user, host, db, seconds] = row;
    return ` (connection ${String(threadId)} of ${String(user)}@${String(host)}, on database ${String(db ?? '(none)')}, ${String(seconds)} s in its current statement; the lock covers the whole server, every database on it)`;
  } catch {
    return '';
  }
}

function migrationsFolder(): string {
  const folder = findMigrationsFolder();
  if (!folder)
    throw new CliError('migrations/meta/_journal.json not found (set SHARDGATE_MIGRATIONS_DIR)', 1);
  return folder;
}

/**
 * The shards in etcd (exit 2 when etcd cannot be reached; 1, naming it, when it refuses the
 * credentials or the read: etcd-auth-refusal.ts)
 */
async function readShards(
  env: Env,
  named: Set<string> | undefined,
): Promise<Map<string, ShardConfig | undefined>> {
  const { SHARDGATE_ETCD_ENDPOINTS: endpoints, SHARDGATE_ETCD_PREFIX: prefix } = env;
  const etcd = createEtcdClient({ endpoints, retries: 0, auth: etcdCredentials(env) });
  try {
    const raw = await etcd
      .getAll()
      .prefix(`${prefix}shards/`)
      .buffers()
      .catch((error: unknown) => {
        const refused = etcdAuthRefusal(error);
        if (refused) throw new CliError(refused, 1);
        throw new CliError(`etcd unreachable at ${endpoints.join(',')}: ${(error as Error).message}`, 2);
      });
    // undefined: in etcd but not named by --shard
    const shards = new Map<string, ShardConfig | undefined>();
    for (const [key, value] of Object.entries(raw)) {
      const relative = key.slice(prefix.length);
      // a shard not named is neither migrated nor judged
      const id = relative.slice('shards/'.length);
      if (named && !named.has(id)) {
        shards.set(id, undefined);
        continue;
      }
      const parsed = parseConfigKey(relative, configValueText(value));
      if (!parsed.ok) throw new CliError(`${relative}: ${parsed.reason}`, 1);
      if (parsed.parsed.type === 'shard') shards.set(parsed.parsed.id, parsed.parsed.value);
    }
    if (shards.size === 0)
      throw new CliError(`no shards under ${prefix}shards/ in etcd (run: npx shardgate-ctl init)`, 1);
    const unknown = [...(named ?? [])].filter((id) => !shards.has(id));
    if (unknown.length > 0) {
      const known = [...shards.keys()].sort((a, b) => a.localeCompare(b)).join(', ');
      throw new CliError(
        `unknown shard ${unknown.map((id) => `"${id}"`).join(', ')} (known: ${known}); nothing migrated`,
        1,
      );
    }
    return shards;
  } finally {
    etcd.close();
  }
}

/** A connection on a socket of its own, so that one given up on can be torn down outright. */
async function connectOwned(
  options: ConnectionOptions,
): Promise<{ connection: Connection; kill: (error: Error) => void }> {
  let socket: Socket | undefined;
  const connection = await createConnection({
    ...options,
    connectTimeout: CONNECT_TIMEOUT_MS,
    stream: () => {
      socket = connect({ host: options.host!, port: options.port! });
      return socket;
    },
  }).catch((error: unknown) => {
    socket?.destroy();
    throw error;
  });
  // lost while idle (killed here or by the server): not a process-ending 'error' event; the next
  // statement on it fails and says so
  connection.on('error', () => {});
  // mysql2's destroy() only half-closes, which a frozen server never completes; an error on the
  // socket fails the statement waiting on it
  return { connection, kill: (error) => socket!.destroy(error) };
}

async function migrateShard(
  id: string,
  shard: ShardConfig,
  { user, password, folder }: { user: string; password: string | undefined; folder: string },
): Promise<string> {
  const where = `${shard.master.host}:${shard.master.port}/${shard.database}`;
  const options: ConnectionOptions = {
    host: shard.master.host,
    port: shard.master.port,
    user,
    password,
    database: shard.database,
  };
  const connectOrSay = (what: string) =>
    connectOwned(options).catch((error: unknown) => {
      // the server's "access denied" does not say which variable was missing
      const hint =
        (error as { errno?: number }).errno === ER_ACCESS_DENIED
          ? missingPasswordHint(password, shard.passwordEnv)
          : '';
      throw new CliError(
        `shard ${id} (${where}): cannot connect${what}: ${(error as Error).message}${hint}`,
        1,
      );
    });
  const { connection, kill } = await connectOrSay('');
  const watchdog = await connectOrSay(' a second time (to watch the first)').catch((error: unknown) => {
    kill(new Error('not used'));
    throw error;
  });
  // a DDL statement has no time bound (an ALTER of a big table takes what it takes), but a master
  // that answers no ping on the second connection is frozen: give up on this shard, go on
  let frozen: CliError | undefined;
  const stopWatch = watchLiveness(
    () => watchdog.connection.query('SELECT 1'),
    (silentMs) => {
      frozen = new CliError(
        `shard ${id} (${where}): the master answered no ping for ${silentMs / 1000} s (frozen?), so this shard was given up on; a statement it was running may still complete once the server runs again, without being recorded as applied (MariaDB's DDL is not transactional): once it answers, check its schema against migrations/ before running migrate again`,
        1,
      );
      kill(frozen);
      watchdog.kill(frozen);
    },
    { silentMs: SILENT_MS },
  );
  try {
    // the migrator's own statements carry values too (its journal's hashes), escaped by mysql2
    await connection.query(SET_SESSION_SQL_MODE);
    const [locked] = await connection.query<[]>({
      sql: "SELECT GET_LOCK('shardgate.migrate', 60)",
      rowsAsArray: true,
    });
    if (Number((locked as unknown[][])[0]?.[0]) !== 1) {
      throw new CliError(
        `shard ${id} (${where}): another migration holds the lock for over 60 s${await lockHolder(connection)}`,
        1,
      );
    }
    const count = async () => {
      const [rows] = await connection
        .query<[]>({ sql: 'SELECT COUNT(*) FROM `__drizzle_migrations`', rowsAsArray: true })
        .catch(() => {
          if (frozen) throw frozen;
          return [[[0]]] as unknown as [[]];
        });
      return Number((rows as unknown[][])[0]?.[0] ?? 0);
    };
    const before = await count();
    const journal = migrationJournal(folder) ?? [];
    const inBuild = journal.length;
    /** what drizzle judges by (pending-migrations.ts); undefined when the records cannot be read */
    const found = async () =>
      connection
        .query<[]>({ sql: 'SELECT created_at FROM `__drizzle_migrations`', rowsAsArray: true })
        .then(([rows]) =>
          pendingMigrations(
            journal,
            (rows as unknown[][]).map((r) => Number(r[0])),
          ),
        )
        .catch((error: unknown) =>
          (error as { errno?: number }).errno === 1146 ? pendingMigrations(journal, []) : undefined,
        );
    // a read-only server (a replica named as the master): drizzle's first statement, a CREATE
    // TABLE IF NOT EXISTS, fails there even with nothing to apply (an outside check)
    const [readOnly] = await connection.query<[]>({ sql: 'SELECT @@global.read_only', rowsAsArray: true });
    if (Number((readOnly as unknown[][])[0]?.[0]) === 1) {
      const there = await found();
      if (there && there.pending.length === 0)
        return `shard ${id} (${where}): 0 applied, ${before} in total (a read-only server)`;
      throw new CliError(
        `shard ${id} (${where}): the server is read-only (read_only=ON: a replica?)${there ? ` and lacks ${there.pending.length} of this build's ${inBuild} migrations` : ''}; migrate the shard's master (shards/${id} names this server: shards set-master if it is not the master)`,
        1,
      );
    }
    await migrate(drizzle(connection), { migrationsFolder: folder }).catch(async (error: unknown) => {
      const cause = (error as { cause?: { message?: string } }).cause?.message;
      // where to look: the first migration drizzle was to apply (the first newer than the last
      // recorded); unnamed when the records cannot be read (the connection lost)
      const firstUnrecorded = (await found())?.pending[0]?.tag;
      const which = firstUnrecorded
        ? ` (the first migration not recorded there: ${firstUnrecorded}; if its statements ran in part, an interrupted run or one run by hand, see docs/operations.md, "A migration that failed part-way")`
        : '';
      throw new CliError(
        `shard ${id} (${where}): ${cause ?? (error as Error).message}${which}`.replace(/\s+/g, ' '),
        1,
      );
    });
    const after = await count();
    // an older build run against a schema a newer one migrated (a rollback): said, not refused
    const newerThere = (await found())?.newer ?? 0;
    const newer =
      newerThere > 0 ? ` (${newerThere} more than this build knows: a newer build migrated it)` : '';
    return `shard ${id} (${where}): ${after - before} applied, ${after} in total${newer}`;
  } catch (error) {
    throw frozen ?? error;
  } finally {
    stopWatch();
    if (frozen) {
      kill(frozen);
      watchdog.kill(frozen);
    } else {
      // a ping still in flight holds end()'s QUIT behind it: a master that froze just now would
      // hold it for ever, so end() gets a bound and the sockets are destroyed after it
      const ended = Promise.all([connection.end(), watchdog.connection.end()]).catch(() => {});
      await Promise.race([ended, new Promise((r) => setTimeout(r, END_WAIT_MS).unref())]);
      const done = new Error('migration finished');
      kill(done);
      watchdog.kill(done);
    }
  }
}

const CONNECT_TIMEOUT_MS = 5000;
/** how long a connection's polite close may take before its socket is destroyed */
const END_WAIT_MS = 2000;
/** no answer to a ping for this long: the master is taken as frozen (liveness-watch.ts) */
const SILENT_MS = 10_000;
const ER_ACCESS_DENIED = 1045;

async function main(): Promise<void> {
  let env: ReturnType<typeof parseEnv>;
  try {
    env = parseEnv(process.env);
  } catch (error) {
    if (error instanceof EnvError) throw new CliError(error.message, 1);
    throw error;
  }
  const args = parseShardArgs(process.argv.slice(2));
  if (!args.ok) throw new CliError(args.reason, 1);
  const named = args.named;
  const folder = migrationsFolder();
  const shards = await readShards(env, named);
  const sorted = [...shards].sort(([a], [b]) => a.localeCompare(b));
  const ordered = sorted.flatMap(([id, shard]) => (shard ? [[id, shard] as const] : []));
  const skipped = sorted.flatMap(([id, shard]) => (shard ? [] : [id]));
  // a shard pointed at a server outside SHARDGATE_DB_HOSTS gets neither the password nor DDL
  const refused = ordered.flatMap(([id, shard]) => {
    const why = refusedServers(env.SHARDGATE_DB_HOSTS, shard);
    return why ? [`shard ${id}: ${why}`] : [];
  });
  if (refused.length > 0) throw new CliError(`${refused.join('; ')}; nothing migrated`, 1);
  let failed = 0;
  for (const [id, shard] of ordered) {
    const password = shardPassword(env, shard.passwordEnv);
    try {
      console.log(await migrateShard(id, shard, { user: env.SHARDGATE_DB_USER, password, folder }));
    } catch (error) {
      // any failure of one shard (a connection lost mid-way included) is its line, not the end
      const line =
        error instanceof CliError
          ? error.message
          : `shard ${id} (${shard.master.host}:${shard.master.port}/${shard.database}): ${error instanceof Error ? error.message : String(error)}`;
      console.error(`migrate: ${line}`.replace(/\s+/g, ' '));
      failed++;
    }
  }
  if (skipped.length > 0) console.log(`not named, not migrated: ${skipped.join(', ')}`);
  if (failed > 0) throw new CliError(`${failed} of ${ordered.length} shard(s) failed`, 1);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof CliError) {
      console.error(`migrate: ${error.message}`);
      process.exit(error.exitCode);
    }
    console.error(`migrate: ${error instanceof Error ? error.message : String(error)}`.replace(/\s+/g, ' '));
    process.exit(1);
  },
);
