/**
 * The environment every shardgate process of the local stack gets (CONTRACT.md §3), built from
 * stack/topology.ts.
 * Secrets: the JWT secret and the replication user's password are generated on first use
 * (normally the first `up`, under its lock) and kept in `.stack/secrets.env` (mode 0600,
 * `KEY=value` lines a shell can source), so every later `up` reuses them: tokens survive a
 * restart and the replicas keep their master. Neither ever goes to git or etcd.
 * SHARDGATE_JWT_SECRET in the environment wins over the file. The DB password comes from
 * SHARDGATE_DB_PASSWORD, else the stack default CONTRACT.md §2 names (`shardgate`), which outside
 * tests may use; root has none (stack/mariadb.ts).
 * Every listener of these processes (API, agent-check, worker metrics) binds `topology.host`
 * (SHARDGATE_LISTEN_HOST), the address HAProxy's server lines and the tests use, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import { etcdClientUrl } from './etcd.js';
import { withLockSync } from './lock.js';
import { SECRETS_FILE } from './paths.js';
import { topology } from './topology.js';

const H = topology.host;

/** what `.stack/secrets.env` holds, with the random bytes each is made of (base64url) */
const GENERATED = { SHARDGATE_JWT_SECRET: 32, STACK_REPL_PASSWORD: 18 } as const;
type SecretName = keyof typeof GENERATED;

function secretsInFile(file: string): Map<string, string> {
  const found = new Map<string, string>();
  if (!existsSync(file)) return found;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.+)$/.exec(line);
    // the first line of a name wins: two processes that both found it missing converge on it
    if (m && !found.has(m[1]!)) found.set(m[1]!, m[2]!);
  }
  return found;
}

/**
 * The generated secrets of `file`, every missing one generated and appended first (a file of an
 * older stack keeps what it has). Appending happens under `<file>.lock` (lock.ts, as `up`'s own
 * lock: a holder's pid, taken over when that process is gone), so two processes never both add a
 * name: the shell that sources the file takes a name's last line,
 * this its first, and the two must agree. Exported for its test; the stack reads SECRETS_FILE.
 */
export function stackSecrets(file: string): Record<SecretName, string> {
  const names = Object.keys(GENERATED) as SecretName[];
  let known = secretsInFile(file);
  if (names.some((n) => !known.has(n)))
    withLockSync(`${file}.lock`, () => {
      known = secretsInFile(file);
      const missing = names.filter((n) => !known.has(n));
      if (missing.length === 0) return;
      const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
      // a hand-edited file without its last newline: the first new line must not join it
      const lead = text === '' || text.endsWith('\n') ? '' : '\n';
      const lines = missing.map((n) => `${n}=${randomBytes(GENERATED[n]).toString('base64url')}\n`).join('');
      appendFileSync(file, lead + lines, { mode: 0o600 });
      chmodSync(file, 0o600);
      known = secretsInFile(file);
    });
  const missing = names.filter((n) => !known.has(n));
  if (missing.length > 0) throw new Error(`${file}: no ${missing.join(', ')} after writing it`);
  return Object.fromEntries(names.map((n) => [n, known.get(n)!])) as Record<SecretName, string>;
}

export function dbPassword(): string {
  return process.env.SHARDGATE_DB_PASSWORD ?? topology.defaultDbPassword;
}

export function jwtSecret(): string {
  return process.env.SHARDGATE_JWT_SECRET || stackSecrets(SECRETS_FILE).SHARDGATE_JWT_SECRET;
}

/** the password of the stack's replication user (stack/mariadb.ts); not an environment variable of the product */
export function replicationPassword(): string {
  return stackSecrets(SECRETS_FILE).STACK_REPL_PASSWORD;
}

export function stackEnv(): Record<string, string> {
  return {
    SHARDGATE_MODE: 'cluster',
    SHARDGATE_LISTEN_HOST: H,
    SHARDGATE_ETCD_ENDPOINTS: etcdClientUrl,
    SHARDGATE_ETCD_PREFIX: topology.etcd.prefix,
    SHARDGATE_REDIS_URL: `redis://${H}:${topology.redis.port}`,
    SHARDGATE_AMQP_URL: `amqp://guest:guest@${H}:${topology.rabbitmq.port}`,
    SHARDGATE_SMTP_URL: `smtp://${H}:${topology.smtp.port}`,
    SHARDGATE_DB_USER: topology.dbUser,
    SHARDGATE_DB_PASSWORD: dbPassword(),
    // every MariaDB node of the stack (and of the failover test) is on this host: a shard in etcd
    // naming another server is rejected instead of being sent the password (src/config/db-hosts.ts)
    SHARDGATE_DB_HOSTS: H,
    SHARDGATE_JWT_SECRET: jwtSecret(),
  };
}
