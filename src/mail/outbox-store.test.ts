import type { Pool } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { newId } from '../domain/ids.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';
import { DeliveryUnrecordedError, type HoldMails, OutboxStore } from './outbox-store.js';
import type { HeldMail } from './smtp-sender.js';

// port 1 on the loopback: nothing listens, so a connection is refused at once
const shard = (port: number) => JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [] });

function store(config: MemoryConfigStore) {
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  return new OutboxStore({ config, breakers, logger: silentLogger, user: 'u', password: () => undefined });
}

describe('OutboxStore', () => {
  it("answers a refused master with a DependencyError counted by the shard's master breaker", async () => {
    const config = new MemoryConfigStore({ initial: { 'shards/shard-1': shard(1) } });
    const outbox = store(config);
    try {
      const error = await outbox.backlog('shard-1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyError);
      expect((error as DependencyError).dependency).toBe('mysql-master:shard-1');
    } finally {
      await outbox.close();
    }
  });

  it('follows the shard map until it is closed, and opens no pool after', async () => {
    const config = new MemoryConfigStore({ initial: { 'shards/shard-1': shard(1) } });
    const outbox = store(config);
    config.put('shards/shard-2', shard(1));
    expect(outbox.shardIds().sort()).toEqual(['shard-1', 'shard-2']);
    await outbox.close();
    config.put('shards/shard-3', shard(1));
    expect(outbox.shardIds()).toEqual([]);
  });
});

/**
 * One shard master's outbox as a pool: `delivered` is `delivered_at` as committed. A transaction
 * sees its own marks and publishes them at COMMIT; with `commitLost` the COMMIT applies on the
 * "server" but its answer is lost (the connection dies), as after a breaker timeout.
 */
class FakeOutboxPool {
  delivered = new Map<string, boolean>();
  commitLost = false;
  /** the COMMIT fails and does not apply (MariaDB: a binlog it cannot write, ER_ERROR_ON_WRITE) */
  commitFails = false;
  async getConnection() {
    const marks = new Set<string>();
    return {
      beginTransaction: async () => {},
      query: async (text: string, params: unknown[]) => {
        const ids = params[0] as string[];
        if (text.startsWith('SELECT id, delivered_at'))
          return [
            ids
              .filter((id) => this.delivered.has(id))
              .map((id) => ({ id, delivered: this.delivered.get(id) ? 1 : 0 })),
          ];
        if (text.startsWith('UPDATE outbox SET delivered_at = NOW')) {
          for (const id of ids) marks.add(id);
          return [{}];
        }
        throw new Error(`unexpected ${text}`);
      },
      commit: async () => {
        if (this.commitFails)
          throw Object.assign(
            new Error('Error writing file \'./binlog.000002\' (Errcode: 28 "No space left on device")'),
            {
              errno: 3,
              code: 'EE_WRITE',
              sqlState: 'HY000',
            },
          );
        for (const id of marks) this.delivered.set(id, true);
        if (this.commitLost)
          throw Object.assign(new Error('Connection lost'), {
            code: 'PROTOCOL_CONNECTION_LOST',
            fatal: true,
          });
      },
      rollback: async () => {
        if (this.commitLost && !this.commitFails)
          throw new Error("Can't add new command when connection is in closed state");
      },
      release: () => {},
      destroy: () => {},
    };
  }
  async query(text: string, params: unknown[]) {
    if (!text.startsWith('UPDATE outbox SET delivered_at = NULL')) throw new Error(`unexpected ${text}`);
    for (const id of params[0] as string[]) this.delivered.set(id, false);
    return [{}];
  }
  async end() {}
}

describe('OutboxStore.deliverBatch', () => {
  function rig() {
    const config = new MemoryConfigStore({ initial: { 'shards/shard-1': shard(3306) } });
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    const pool = new FakeOutboxPool();
    const outbox = new OutboxStore({
      config,
      breakers,
      logger: silentLogger,
      user: 'u',
      password: () => undefined,
      createPool: () => pool as unknown as Pool,
    });
    const [a, b] = ['01JABCDEFGHJKMNPQRSTVWXYZ0', '01JABCDEFGHJKMNPQRSTVWXYZ1'] as const;
    pool.delivered.set(a, false).set(b, false);
    const refusal = new DependencyError('smtp', '550 rejected after DATA');
    /** ids given to hold, in order; b is refused after its dot */
    const offered: string[][] = [];
    const hold: HoldMails = async (ids) => {
      offered.push([...ids]);
      return new Map(
        ids.map((id): [string, HeldMail] => [
          id,
          {
            cancel() {},
            release() {
              const accepted = id === b ? Promise.reject(refusal) : Promise.resolve();
              accepted.catch(() => {});
              return { written: Promise.resolve(), accepted };
            },
          },
        ]),
      );
    };
    return { pool, outbox, a, b, hold, offered };
  }

  it('clears the mark of a mail refused after its dot when the COMMIT fails but applied', async () => {
    const { pool, outbox, a, b, hold } = rig();
    pool.commitLost = true;
    try {
      const error = await outbox.deliverBatch('shard-1', [a, b], hold).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeliveryUnrecordedError);
      expect((error as DeliveryUnrecordedError).sent).toEqual([a]);
      expect((error as Error).cause).toBeInstanceOf(DependencyError);
      // a's mark committed: the retry acks it as a duplicate; b was refused: the retry sends it
      expect(Object.fromEntries(pool.delivered)).toEqual({ [a]: true, [b]: false });
      pool.commitLost = false;
      const retry = await outbox.deliverBatch('shard-1', [a, b], hold);
      expect(retry.duplicate).toEqual([a]);
      expect(retry.refused.has(b)).toBe(true);
    } finally {
      await outbox.close();
    }
  });

  it('names the mails sent when the COMMIT fails after their dots, and records them at the retry without sending', async () => {
    const { pool, outbox, a, b, hold, offered } = rig();
    pool.commitFails = true;
    try {
      const error = await outbox.deliverBatch('shard-1', [a, b], hold).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DeliveryUnrecordedError);
      expect((error as DeliveryUnrecordedError).sent).toEqual([a]); // b was refused after its dot
      expect(Object.fromEntries(pool.delivered)).toEqual({ [a]: false, [b]: false });
      pool.commitFails = false;
      const missing = newId(); // sent before, and no row to record it in (a young id: not purged)
      const retry = await outbox.deliverBatch('shard-1', [a, b, missing], hold, new Set([a, missing]));
      expect(offered).toEqual([[a, b], [b]]); // a and the missing one were not given to hold again
      expect(retry.recorded.sort()).toEqual([a, missing].sort());
      expect(retry.missing).toEqual([]);
      expect(retry.refused.has(b)).toBe(true);
      expect(Object.fromEntries(pool.delivered)).toEqual({ [a]: true, [b]: false });
      // once recorded, a copy given as sent before is a duplicate
      const again = await outbox.deliverBatch('shard-1', [a], hold, new Set([a]));
      expect(again).toMatchObject({ duplicate: [a], recorded: [] });
    } finally {
      await outbox.close();
    }
  });
});
