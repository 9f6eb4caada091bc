/**
 * Builds the data path of a Node process in cluster mode: one mysql2 pool per database node
 * (MysqlNodeSet), the shard router following `shards/*` in the live config with a breaker per
 * node, SqlDataAccess over it, argon2id password hashing (taking turns by tenant at a gate of
 * SHARDGATE_PASSWORD_WORK_CONCURRENCY at once), member JWTs and consistency tokens
 * (signed with SHARDGATE_JWT_SECRET, also verified with SHARDGATE_JWT_SECRET_ACCEPTED when set).
 * `close()` stops the lag probes and ends the pools.
 */

import { availableParallelism } from 'node:os';
import type { Services } from '../app-env.js';
import { Argon2Hasher } from '../auth/argon2-hasher.js';
import { JwtMemberTokens } from '../auth/jwt-member-tokens.js';
import { nodeHs256Jws } from '../auth/node-hs256-jws.js';
import { PasswordWorkGate } from '../auth/password-work-gate.js';
import { MASTER_HISTORY_RESETS } from '../cache/master-history-marks.js';
import type { ConfigStore } from '../config/interface.js';
import { nodeDerivedCipher } from '../crypto/node-derived-cipher.js';
import { nodeDerivedMac } from '../crypto/node-derived-mac.js';
import { REQUEST_FINGERPRINT_LABEL } from '../domain/idempotency.js';
import type { Env } from '../env.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { breakerNodeGuard } from '../routing/breaker-node-guard.js';
import { SealedConsistencyTokens } from '../routing/consistency-token.js';
import type { GtidPosition } from '../routing/gtid.js';
import { ShardRouter } from '../routing/shard-router.js';
import { registerDataMetrics } from './data-metrics.js';
import { isUnknownColumn, toReplicaColumnMissing, toSchemaBehind, withShardNamed } from './mysql-errors.js';
import { MysqlNodeSet } from './mysql-node-set.js';
import type { MysqlSession } from './mysql-session.js';
import type { JournalEntry } from './pending-migrations.js';
import { SchemaWatch } from './schema-watch.js';
import { shardPassword } from './shard-password.js';
import { SqlDataAccess } from './sql-data-access.js';

export interface DataServices {
  services: Pick<
    Services,
    | 'data'
    | 'passwords'
    | 'passwordWork'
    | 'memberTokens'
    | 'consistencyTokens'
    | 'requestFingerprints'
    | 'acceptedRequestFingerprints'
    | 'replication'
  >;
  router: ShardRouter<MysqlSession>;
  close(): Promise<void>;
}

export function createDataServices({
  env,
  processEnv,
  config,
  logger,
  breakers,
  metrics,
  instanceId,
  loopIdleMs,
  onMasterHistoryReset,
  onMasterPosition,
  migrations,
}: {
  env: Env;
  /** this process's instance id: its row in each master's `breaker_probes` (at most 63 chars kept) */
  instanceId: string;
  /** where a shard's `passwordEnv` is looked up (normally process.env) */
  processEnv: Record<string, string | undefined>;
  config: ConfigStore;
  logger: Logger;
  breakers: BreakerRegistry;
  metrics: Metrics;
  /** the event loop's idle time so far (ms), for the replica probes' round trip (ShardRouter) */
  loopIdleMs?: () => number;
  /** a shard master's GTID history went back (ShardRouter `onHistoryReset`): the read cache forgets the shard */
  onMasterHistoryReset?: (shardId: string) => void;
  /** each position a shard master answered its probe with (ShardRouter `onMasterPosition`) */
  onMasterPosition?: (shardId: string, position: GtidPosition) => void;
  /** this build's migrations (its journal): each shard's schema is compared with them (schema-watch.ts) */
  migrations?: readonly JournalEntry[];
}): DataServices {
  const secret = env.SHARDGATE_JWT_SECRET;
  if (!secret) throw new Error('SHARDGATE_JWT_SECRET is required');
  // key rotation: verifies, never signs (parseEnv made sure it differs from the secret)
  const acceptedSecret = env.SHARDGATE_JWT_SECRET_ACCEPTED;
  const nodes = new MysqlNodeSet({
    user: env.SHARDGATE_DB_USER,
    password: (name) => shardPassword(env, name, processEnv),
    logger,
  });
  // made once the router is: the guard asks it only on a call's failure
  let schemas: SchemaWatch | undefined;
  const guard = breakerNodeGuard(breakers, {
    probeId: instanceId.slice(0, 63),
    explain: (error, { name, kind, shardId }) => {
      if (isUnknownColumn(error)) {
        const behind = schemas?.behind(shardId);
        if (behind) return toSchemaBehind(name, shardId, error, behind);
        if (kind === 'mysql-replica') return toReplicaColumnMissing(name, error);
      }
      return withShardNamed(error, shardId);
    },
  });
  const historyResets = metrics.counter(MASTER_HISTORY_RESETS);
  // a read at a write's position served by the master (wanted=replica_at_position, served=master)
  // is one no replica had applied in time, or no replica was routable: the price of
  // read-your-writes, and a replica falling behind shows here before its lag reaches the limit
  // (an outside check found no count)
  const reads = metrics.counter({
    name: 'db_reads_total',
    help: 'database reads by what they asked for (replica, replica_at_position, master, master_else_replica) and where they were served (replica, master)',
    labelNames: ['shard', 'wanted', 'served'],
  });
  const router = new ShardRouter({
    config,
    nodes,
    logger,
    guard,
    loopIdleMs,
    onHistoryReset: (shardId) => {
      historyResets.inc({ shard: shardId });
      onMasterHistoryReset?.(shardId);
    },
    onMasterPosition,
    onRead: (shard, wanted, served) => reads.inc({ shard, wanted, served }),
  });
  registerDataMetrics({ metrics, nodes, router });
  if (migrations === undefined)
    logger.warn(
      { journal: 'migrations/meta/_journal.json' },
      "this build's migrations journal was not found: shards' schemas are not compared with it",
    );
  else {
    schemas = new SchemaWatch({
      journal: migrations,
      shards: () => router.status().map((s) => s.id),
      recorded: (shardId) => router.master(shardId).run((s) => s.recordedMigrations()),
      logger,
      metrics,
    });
    schemas.start();
  }
  const refusedWork = metrics.counter({
    name: 'password_work_refused_total',
    help: 'password checks and hashes refused (503 server_busy): no turn within 2 s, or too many waiting',
  });
  // cores less one, and under the libuv pool's 4 threads (DNS lookups and file reads use it too)
  const passwordWork = new PasswordWorkGate(
    env.SHARDGATE_PASSWORD_WORK_CONCURRENCY ?? Math.max(1, Math.min(3, availableParallelism() - 1)),
    { onRefused: () => refusedWork.inc() },
  );
  metrics.gauge({
    name: 'password_work_waiting',
    help: 'password checks and hashes waiting for their turn (auth/password-work-gate.ts)',
    collect: (g) => g.set({}, passwordWork.waiting),
  });
  return {
    services: {
      data: new SqlDataAccess({ router }),
      replication: router,
      passwords: new Argon2Hasher(),
      passwordWork,
      // node:crypto variants: same keys and tokens as the Web Crypto defaults, no thread-pool job
      // per MAC or seal
      memberTokens: new JwtMemberTokens({ secret, acceptedSecret, jws: nodeHs256Jws, logger, metrics }),
      consistencyTokens: new SealedConsistencyTokens({
        secret,
        acceptedSecret,
        cipher: nodeDerivedCipher,
        mac: nodeDerivedMac,
        issue: env.SHARDGATE_CONSISTENCY_TOKENS,
      }),
      requestFingerprints: nodeDerivedMac({ secret, label: REQUEST_FINGERPRINT_LABEL }),
      acceptedRequestFingerprints:
        acceptedSecret === undefined
          ? undefined
          : nodeDerivedMac({ secret: acceptedSecret, label: REQUEST_FINGERPRINT_LABEL }),
    },
    router,
    async close() {
      schemas?.close();
      router.close();
      await nodes.close();
    },
  };
}
