/**
 * Whether a shard's master holds this build's schema: what `shards add` says next (migrate it, or
 * nothing to do). Read from drizzle's own record of applied migrations (`__drizzle_migrations`,
 * written by `npm run migrate`) against this checkout's journal (migrations-folder.ts).
 *
 * Never thrown: without a database password, or when the server cannot be asked in time, the
 * answer is `unchecked` with why.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { ShardConfig } from '../src/config/schema.js';
import { shardPassword } from '../src/db/shard-password.js';
import type { CtlContext } from './ctl-context.js';
import { connectShardServer } from './tenant-rows.js';

export type SchemaState =
  /** migrations applied on that database (the journal's count when up to date) */
  | { applied: number }
  /** no record of migrations there: never migrated */
  | { missing: true }
  | { unchecked: string };

/** ER_NO_SUCH_TABLE */
export const NO_SUCH_TABLE_ERRNO = 1146;
/** a count of a few rows: far more than it takes */
const STATEMENT_TIMEOUT_MS = 5000;

export async function schemaState(
  env: CtlContext['env'],
  shardId: string,
  shard: ShardConfig,
): Promise<SchemaState> {
  if (shardPassword(env, shard.passwordEnv) === undefined)
    return { unchecked: `no database password (${shard.passwordEnv ?? 'SHARDGATE_DB_PASSWORD'} is not set)` };
  let connection: Awaited<ReturnType<typeof connectShardServer>> | undefined;
  try {
    connection = await connectShardServer(env, shardId, shard, shard.master, {
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    });
    const [rows] = await connection.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM `__drizzle_migrations`',
    );
    return { applied: Number(rows[0]?.n ?? 0) };
  } catch (error) {
    if ((error as { errno?: number }).errno === NO_SUCH_TABLE_ERRNO) return { missing: true };
    return { unchecked: (error as Error).message.split('\n')[0] ?? 'the check failed' };
  } finally {
    connection?.destroy();
  }
}

/**
 * The line `shards add` ends with: what to run before a tenant is placed there, or that nothing
 * is needed. `inBuild`: this checkout's migration count (undefined: its journal was not found).
 */
export function schemaLine(id: string, state: SchemaState, inBuild: number | undefined): string {
  const command = `\`npm run migrate -- --shard ${id}\``;
  if ('missing' in state)
    return `next: put the schema on it with ${command} before a tenant is created there`;
  if ('unchecked' in state && /\bUnknown database\b/.test(state.unchecked))
    return `next: create its database on the master (${state.unchecked}; docs/operations.md, "Adding a shard"), then put the schema there with ${command}`;
  if ('unchecked' in state)
    return `next: unless its database has this build's schema already, put it there with ${command} before a tenant is created there (not checked: ${state.unchecked})`;
  if (inBuild === undefined)
    return `schema: ${state.applied} migration(s) applied there (this build's own count not found: run ${command} to be sure)`;
  if (state.applied < inBuild)
    return `next: bring its schema up to date with ${command} (${state.applied} of this build's ${inBuild} migrations applied there)`;
  if (state.applied > inBuild)
    return `schema: ${state.applied} migrations applied there, more than this build's ${inBuild} (a newer build migrated it)`;
  return `schema: up to date (${state.applied} migrations applied there)`;
}
