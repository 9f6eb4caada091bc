/**
 * A shard's database password, as every process that connects looks it up: the variable its
 * `passwordEnv` names (`SHARDGATE_DB_PASSWORD_<SUFFIX>`), else SHARDGATE_DB_PASSWORD. The
 * password never lives in etcd (CONTRACT.md §3).
 */
import type { Env } from '../env.js';

export function shardPassword(
  env: Pick<Env, 'SHARDGATE_DB_PASSWORD'>,
  passwordEnv: string | undefined,
  processEnv: Record<string, string | undefined> = process.env,
): string | undefined {
  return (passwordEnv ? processEnv[passwordEnv] : undefined) ?? env.SHARDGATE_DB_PASSWORD;
}

/**
 * What to add to a server's "access denied" when no password was sent (the server does not say
 * which variable was missing); '' otherwise.
 */
export function missingPasswordHint(password: string | undefined, passwordEnv: string | undefined): string {
  return password === undefined
    ? ` (no password given: is ${passwordEnv ?? 'SHARDGATE_DB_PASSWORD'} set?)`
    : '';
}
