/**
 * A shard's database password, as every process that connects looks it up: the variable its
 * `passwordEnv` names (`SHARDGATE_DB_PASSWORD_<SUFFIX>`), else, for a shard that names none,
 * SHARDGATE_DB_PASSWORD. The password never lives in etcd (CONTRACT.md §3).
 *
 * A shard naming a variable the process lacks gets no password (undefined), never
 * SHARDGATE_DB_PASSWORD in its stead: a typo in etcd must not send the shared password to that
 * shard's servers. The instances reject such a shard outright (src/config/password-env.ts), so
 * only a process that reads shards unvalidated by its environment (`npm run migrate`,
 * shardgate-ctl's row checks) meets one, and its "access denied" names the variable
 * (missingPasswordHint).
 */
import type { Env } from '../env.js';

export function shardPassword(
  env: Pick<Env, 'SHARDGATE_DB_PASSWORD'>,
  passwordEnv: string | undefined,
  processEnv: Record<string, string | undefined> = process.env,
): string | undefined {
  return passwordEnv ? processEnv[passwordEnv] : env.SHARDGATE_DB_PASSWORD;
}

/**
 * What to add to a server's "access denied" when no password, or an empty one, was sent (the
 * server does not say which variable was missing; an empty one read as the unset case's error
 * without its hint: an outside check); '' otherwise.
 */
export function missingPasswordHint(password: string | undefined, passwordEnv: string | undefined): string {
  const name = passwordEnv ?? 'SHARDGATE_DB_PASSWORD';
  if (password === undefined) return ` (no password given: is ${name} set?)`;
  if (password === '') return ` (an empty password given: ${name} is set but empty)`;
  return '';
}
