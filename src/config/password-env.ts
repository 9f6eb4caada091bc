/**
 * A shard's `passwordEnv` judged against the environment of the process that would connect with
 * it (API, worker): a variable it lacks is a typo or a deployment gap, and is rejected like any
 * invalid value (the last good value stays; `/health/config` names the variable), never answered
 * with another password: shardPassword (src/db/shard-password.ts) sends none for it, not
 * SHARDGATE_DB_PASSWORD. Set but empty counts as set (a passwordless account).
 */

/** the environment shards are judged by; `process.env` in the instances */
export type ProcessEnv = Readonly<Record<string, string | undefined>>;

/** Why `passwordEnv` is refused in `processEnv`; undefined when set there, none named, or no env. */
export function refusedPasswordEnv(
  processEnv: ProcessEnv | undefined,
  passwordEnv: string | undefined,
): string | undefined {
  if (processEnv === undefined || passwordEnv === undefined) return undefined;
  return processEnv[passwordEnv] === undefined
    ? `passwordEnv ${passwordEnv} is not set in this process's environment`
    : undefined;
}
