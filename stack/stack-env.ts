/**
 * The environment every shardgate process of the local stack gets (CONTRACT.md §3), built from
 * stack/topology.ts. Secrets: the DB password comes from SHARDGATE_DB_PASSWORD (stack default
 * `shardgate`); the JWT secret from SHARDGATE_JWT_SECRET or else one generated on the first `up`
 * and kept in `.stack/secrets.env` (mode 0600) so every later `up` reuses it — tokens survive a
 * restart. Neither ever goes to git or etcd.
 * Every listener of these processes (API, agent-check, worker metrics) binds `topology.host`
 * (SHARDGATE_LISTEN_HOST), the address HAProxy's server lines and the tests use, and nothing else.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { etcdClientUrl } from './etcd.js';
import { SECRETS_FILE } from './paths.js';
import { topology } from './topology.js';

const H = topology.host;

export function dbPassword(): string {
  return process.env.SHARDGATE_DB_PASSWORD ?? topology.defaultDbPassword;
}

export function jwtSecret(): string {
  if (process.env.SHARDGATE_JWT_SECRET) return process.env.SHARDGATE_JWT_SECRET;
  if (existsSync(SECRETS_FILE)) {
    const m = /^SHARDGATE_JWT_SECRET=(.+)$/m.exec(readFileSync(SECRETS_FILE, 'utf8'));
    if (m?.[1]) return m[1];
  }
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(SECRETS_FILE), { recursive: true });
  writeFileSync(SECRETS_FILE, `SHARDGATE_JWT_SECRET=${secret}\n`, { mode: 0o600 });
  chmodSync(SECRETS_FILE, 0o600);
  return secret;
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
