/**
 * A shard written with a `passwordEnv` that shardgate-ctl's own environment lacks. Every instance
 * whose environment lacks it too rejects the shard ("passwordEnv … is not set in this process's
 * environment", src/config/password-env.ts; the last good value stays, a new shard has none), yet
 * `shards add --password-env SHARDGATE_DB_PASSWORD_NOPE` wrote it with exit 0 and no word (an
 * outside check). The CLI often runs where the instances' secrets are not (an operator's shell),
 * so its environment proves nothing of theirs: a warning line, never a refusal. Judged by the
 * instances' own rule (refusedPasswordEnv), against this process's environment.
 */
import { refusedPasswordEnv } from '../src/config/password-env.js';

/** The warning for shard `shardId` written with `passwordEnv`; undefined when set here or none. */
export function passwordEnvWarning(
  command: string,
  shardId: string,
  passwordEnv: string | undefined,
  processEnv: Readonly<Record<string, string | undefined>> = process.env,
): string | undefined {
  if (refusedPasswordEnv(processEnv, passwordEnv) === undefined) return undefined;
  return `${command}: warning: shard ${shardId}'s passwordEnv ${passwordEnv} is not set in this command's environment: an instance whose environment lacks it too rejects the shard's entry (check GET /health/config or shardgate-ctl status)`;
}
