/**
 * A replica whose replication stopped on an error is excluded at once, and says why
 * (src/routing/replication-stopped.ts, shard-router.ts). An outside tester broke a real replica's
 * SQL thread with a duplicate key (a row inserted on the replica alone, then the same row on the
 * master: `Last_SQL_Errno: 1062`); the instances kept reading it until its lag passed
 * `replication/max_lag_seconds` (on a shard with no writes: forever), and `/health/replication`
 * said only `excluded lag 13.0 s`, no reason. Here the max lag is 60 s, so only the stopped
 * thread can exclude it within the 3 s allowed. The replica is always repaired afterwards (the
 * row deleted on it alone, `START SLAVE`): other tests use it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, INSTANCES } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { scrapeMetric } from './helpers/metrics.js';
import { node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = 'shard-2';
const tenant = uniqueTenantId('repl-stopped');
const masterPort = node(shard, 'master').port;
const replicaPort = node(shard, 'replica').port;
const bookId = `01REPLSTOPPED${Date.now().toString(36).toUpperCase()}`.padEnd(26, '0').slice(0, 26);
const INSERT_BOOK =
  "INSERT INTO books (tenant_id, id, isbn, title, author, copies, available, created_at, updated_at) VALUES (?, ?, '0306406152', 'Conflict', 'Replica', 1, 1, NOW(3), NOW(3))";
const restores: (() => void)[] = [];

interface ReplicaStatus {
  node: string;
  state: string;
  lagSeconds: number | null;
  lastError?: string;
  cause?: string;
}

/** this shard's replica as an instance reports it in /health/replication */
async function replicaStatus(base: string): Promise<ReplicaStatus | undefined> {
  const r = await api('GET', '/health/replication', { base });
  const s = (r.json?.shards as { id: string; replicas: ReplicaStatus[] }[] | undefined)?.find(
    (x) => x.id === shard,
  );
  return s?.replicas.find((x) => x.node.includes(`:${replicaPort}/`));
}

/** runs `sql` on the replica alone: not written to its binlog */
async function onReplicaOnly(sql: string, params: unknown[]): Promise<void> {
  const conn = await rootConnection(replicaPort);
  try {
    await conn.query('SET SESSION sql_log_bin = 0');
    await conn.query(sql, params);
  } finally {
    await conn.end();
  }
}

/** the row written on the replica alone is still there (its twin from the master not applied) */
let replicaOnlyRow = false;

/**
 * The replica left as the stack had it: the row written on it alone gone (once only: after START
 * SLAVE the row there is the master's, and deleting it again would break the next event on it
 * with 1032), its threads running.
 */
async function repair(): Promise<void> {
  if (replicaOnlyRow) {
    await onReplicaOnly('DELETE FROM books WHERE tenant_id = ? AND id = ?', [tenant, bookId]);
    replicaOnlyRow = false;
  }
  await rootQuery(replicaPort, 'START SLAVE');
}

beforeAll(async () => {
  await createTenant(tenant, shard);
  restores.push(etcdOverride('replication/max_lag_seconds', '60'));
  await configInForce((a) => a.replication.maxLagSeconds === 60, 'replication/max_lag_seconds 60');
});

afterAll(async () => {
  try {
    await repair();
    await waitFor(
      async () => {
        const [row] = await rootQuery<{ Slave_SQL_Running: string }>(replicaPort, 'SHOW SLAVE STATUS');
        return row?.Slave_SQL_Running === 'Yes';
      },
      { timeoutMs: 10_000, what: `the SQL thread of :${replicaPort} running again` },
    );
  } finally {
    for (const r of restores.reverse()) r();
    // replicated (after the master's insert, which START SLAVE applied): gone from the replica too
    await rootQuery(masterPort, 'DELETE FROM books WHERE tenant_id = ? AND id = ?', [tenant, bookId]).catch(
      () => {},
    );
    removeTenant(tenant);
  }
});

describe('a replica whose SQL thread stopped on a duplicate key', () => {
  it('is excluded within 3 s with the error as its lastError, and re-admitted once repaired', async () => {
    const base = INSTANCES[0]!;
    await waitFor(async () => (await replicaStatus(base))?.state === 'admitted', {
      timeoutMs: 10_000,
      what: `replica :${replicaPort} admitted on ${base}`,
    });

    replicaOnlyRow = true;
    await onReplicaOnly(INSERT_BOOK, [tenant, bookId]);
    await rootQuery(masterPort, INSERT_BOOK, [tenant, bookId]);
    const brokeAt = performance.now();

    const excluded = await waitFor(
      async () => {
        const s = await replicaStatus(base);
        return s?.state === 'excluded' && /1062/.test(s.lastError ?? '') ? s : undefined;
      },
      { timeoutMs: 3000, intervalMs: 50, what: `replica :${replicaPort} excluded naming error 1062` },
    );
    const tookMs = Math.round(performance.now() - brokeAt);
    console.log(`excluded ${tookMs} ms after the conflicting write: ${excluded.lastError}`);
    expect(excluded.lastError).toMatch(/^replication stopped: SQL thread error 1062: .*Duplicate entry/);
    // the cause as a word, in the status and as a metric
    expect(excluded.cause).toBe('replication_stopped');
    const replicaName = (
      (await api('GET', '/health/replication', { base })).json?.shards as {
        id: string;
        replicas: { name: string; node: string }[];
      }[]
    )
      .find((x) => x.id === shard)
      ?.replicas.find((x) => x.node.includes(`:${replicaPort}/`))?.name;
    expect(
      await scrapeMetric(base, 'shardgate_replica_excluded', {
        shard,
        replica: replicaName ?? '?',
        cause: 'replication_stopped',
      }),
    ).toBe(1);
    // the other instance says so too
    for (const other of INSTANCES.slice(1)) {
      await waitFor(async () => /1062/.test((await replicaStatus(other))?.lastError ?? ''), {
        timeoutMs: 3000,
        intervalMs: 50,
        what: `replica :${replicaPort} excluded naming error 1062 on ${other}`,
      });
    }
    // reads of the shard go to the master meanwhile
    const read = await api('GET', '/v1/books?limit=7', { tenant, base });
    expect(read.headers.get('X-Read-From')).toBe('master');

    await repair();
    const repairedAt = performance.now();
    await waitFor(async () => (await replicaStatus(base))?.state === 'admitted', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: `replica :${replicaPort} re-admitted on ${base} after its repair`,
    });
    console.log(`re-admitted ${Math.round(performance.now() - repairedAt)} ms after the repair`);
    expect((await replicaStatus(base))?.lastError).toBeUndefined();
    expect((await replicaStatus(base))?.cause).toBeUndefined();
    expect(
      (await (await fetch(`${base}/metrics`)).text())
        .split('\n')
        .filter((l) => l.startsWith('shardgate_replica_excluded{') && l.includes(`shard="${shard}"`)),
    ).toEqual([]);
  });
});

describe('a replica whose threads were stopped by hand (STOP SLAVE)', () => {
  it('is judged by its lag, and says its threads are stopped while the lag excludes it', async () => {
    const base = INSTANCES[0]!;
    const restoreLag = etcdOverride('replication/max_lag_seconds', '1');
    try {
      await configInForce((a) => a.replication.maxLagSeconds === 1, 'replication/max_lag_seconds 1');
      await waitFor(async () => (await replicaStatus(base))?.state === 'admitted', {
        timeoutMs: 10_000,
        what: `replica :${replicaPort} admitted on ${base}`,
      });
      await rootQuery(replicaPort, 'STOP SLAVE');
      // a write the replica does not get: its lag grows from it
      await api('POST', '/v1/members', {
        tenant,
        base,
        body: { email: `paused-${Date.now()}@example.org`, name: 'Paused', password: 'a long password' },
      });
      const excluded = await waitFor(
        async () => {
          const s = await replicaStatus(base);
          return s?.state === 'excluded' && s.cause === 'lag' && s.lastError ? s : undefined;
        },
        {
          timeoutMs: 10_000,
          intervalMs: 100,
          what: `replica :${replicaPort} excluded for its lag, saying why`,
        },
      );
      // before: only `lag`, no lastError — a stopped replica looked like a slow one (an outside check)
      expect(excluded.lastError).toBe(
        'replication IO and SQL thread stopped without an error (STOP SLAVE); it falls behind until started',
      );
    } finally {
      await rootQuery(replicaPort, 'START SLAVE');
      restoreLag();
    }
    await configInForce((a) => a.replication.maxLagSeconds === 60, 'replication/max_lag_seconds 60 again');
    await waitFor(async () => (await replicaStatus(base))?.state === 'admitted', {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: `replica :${replicaPort} re-admitted on ${base} once started`,
    });
    expect((await replicaStatus(base))?.lastError).toBeUndefined();
  });
});
