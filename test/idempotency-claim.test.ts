/**
 * `DrizzleIdempotencyRepo.claim` on a real MariaDB master, in open transactions of two sessions
 * (as two requests' writes): a claim locks only its own key's row, so the claim of another key
 * never waits for it (before, a DELETE of the key's expired row, issued first, took a gap lock,
 * and two requests with their own keys deadlocked: answered `409 idempotency_key_in_progress`,
 * 1–6 of 90 registrations at once in an outside check); a claim of the same key waits, and is
 * taken once the first commits, also when two waited (a first fix deadlocked them: each asked
 * for the exclusive lock of a row the other held shared); an expired row is replaced.
 */
import { drizzle } from 'drizzle-orm/mysql2';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DrizzleIdempotencyRepo } from '../src/db/repos/idempotency-repo.js';
import { SqlContext } from '../src/db/repos/sql-context.js';
import { StatementBatcher } from '../src/db/statement-batcher.js';
import { IDEMPOTENCY_RETENTION_MS, IdempotencyKeyTaken } from '../src/domain/idempotency.js';
import { topology } from '../stack/topology.js';
import { appConnection, rootQuery } from './helpers/shard-db.js';
import { uniqueTenantId } from './helpers/tenants.js';

const master = topology.shards[0]!.master.port;
const tenant = uniqueTenantId('idclaim');
const FINGERPRINT = 'f'.repeat(64);
const CLAIMANT = 'claim-test 2026-01-01T00:00:00.000Z';
const sessions: Connection[] = [];

/** a session of its own (as a request's write gets from the pool) and the repo on it */
async function session(): Promise<{ connection: Connection; repo: DrizzleIdempotencyRepo }> {
  const connection = await appConnection(master);
  sessions.push(connection);
  // a wait on another transaction's lock fails after 2 s instead of the server's 50
  await connection.query('SET SESSION innodb_lock_wait_timeout = 2');
  const client = new StatementBatcher({
    query: (options, values) => connection.query(options, values as never) as Promise<[unknown, unknown]>,
    format: (text, values) => connection.format(text, values),
  });
  const context = new SqlContext(drizzle({ client: client as never }), client);
  return { connection, repo: new DrizzleIdempotencyRepo(context, tenant) };
}

/** how a promise settled within `ms`: 'pending' while it still waits */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<'resolved' | 'rejected' | 'pending'> {
  const timer = new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms));
  return Promise.race([
    p.then(
      () => 'resolved' as const,
      () => 'rejected' as const,
    ),
    timer,
  ]);
}

beforeAll(async () => {
  await rootQuery(master, 'DELETE FROM idempotency_keys WHERE tenant_id = ?', [tenant]);
});

afterAll(async () => {
  for (const s of sessions) await s.end().catch(() => {});
  await rootQuery(master, 'DELETE FROM idempotency_keys WHERE tenant_id = ?', [tenant]);
});

describe('idempotency key claims on MariaDB', () => {
  it('a claim of another key goes ahead while a transaction holds the claim of its neighbour', async () => {
    const a = await session();
    const b = await session();
    await a.connection.query('START TRANSACTION');
    await b.connection.query('START TRANSACTION');
    try {
      // adjacent keys of one tenant, no row between them or after them: one gap of the index
      await a.repo.claim('k-02', FINGERPRINT, new Date(), CLAIMANT);
      const other = b.repo.claim('k-03', FINGERPRINT, new Date(), CLAIMANT);
      expect(await settledWithin(other, 1500)).toBe('resolved');
      // and the first one's transaction can still go on in that gap
      await a.repo.claim('k-04', FINGERPRINT, new Date(), CLAIMANT);
      await Promise.all([a.connection.query('COMMIT'), b.connection.query('COMMIT')]);
    } finally {
      await a.connection.query('ROLLBACK').catch(() => {});
      await b.connection.query('ROLLBACK').catch(() => {});
    }
    const rows = await rootQuery<{ k: string }>(
      master,
      'SELECT idem_key AS k FROM idempotency_keys WHERE tenant_id = ? ORDER BY idem_key',
      [tenant],
    );
    expect(rows.map((r) => r.k)).toEqual(['k-02', 'k-03', 'k-04']);
  });

  it('a claim of the same key waits for the first: taken once it commits, its own once it rolls back', async () => {
    const a = await session();
    const b = await session();
    await a.connection.query('START TRANSACTION');
    await b.connection.query('START TRANSACTION');
    await a.repo.claim('same-1', FINGERPRINT, new Date(), CLAIMANT);
    const second = b.repo.claim('same-1', FINGERPRINT, new Date(), CLAIMANT);
    expect(await settledWithin(second, 500)).toBe('pending');
    await a.connection.query('COMMIT');
    await expect(second).rejects.toBeInstanceOf(IdempotencyKeyTaken);
    await b.connection.query('ROLLBACK');

    await a.connection.query('START TRANSACTION');
    await b.connection.query('START TRANSACTION');
    await a.repo.claim('same-2', FINGERPRINT, new Date(), CLAIMANT);
    const after = b.repo.claim('same-2', FINGERPRINT, new Date(), CLAIMANT);
    expect(await settledWithin(after, 500)).toBe('pending');
    await a.connection.query('ROLLBACK');
    await expect(after).resolves.toBeUndefined();
    await b.connection.query('COMMIT');
  });

  it('three claims of one key: the two that waited are both told it is taken, neither deadlocks', async () => {
    const [a, b, c] = [await session(), await session(), await session()];
    for (const s of [a, b, c]) await s.connection.query('START TRANSACTION');
    await a.repo.claim('three-1', FINGERPRINT, new Date(), CLAIMANT);
    const waiting = [b, c].map((s) => s.repo.claim('three-1', FINGERPRINT, new Date(), CLAIMANT));
    expect(await settledWithin(Promise.race(waiting), 500)).toBe('pending');
    await a.connection.query('COMMIT');
    const outcomes = await Promise.allSettled(waiting);
    for (const o of outcomes) {
      expect(o.status).toBe('rejected');
      expect((o as PromiseRejectedResult).reason).toBeInstanceOf(IdempotencyKeyTaken);
    }
    for (const s of [b, c]) await s.connection.query('ROLLBACK');
  });

  it("replaces a key's expired row, and refuses one that has not expired", async () => {
    const a = await session();
    const long = new Date(Date.now() - IDEMPOTENCY_RETENTION_MS - 60_000);
    await a.repo.claim('old-1', 'a'.repeat(64), long, CLAIMANT);
    await a.repo.claim('old-1', FINGERPRINT, new Date(), CLAIMANT);
    const [row] = await rootQuery<{ fingerprint: string; created_at: Date }>(
      master,
      'SELECT fingerprint, created_at FROM idempotency_keys WHERE tenant_id = ? AND idem_key = ?',
      [tenant, 'old-1'],
    );
    expect(row?.fingerprint).toBe(FINGERPRINT);
    expect(Date.now() - new Date(row!.created_at).getTime()).toBeLessThan(IDEMPOTENCY_RETENTION_MS);
    await expect(a.repo.claim('old-1', FINGERPRINT, new Date(), CLAIMANT)).rejects.toBeInstanceOf(
      IdempotencyKeyTaken,
    );
  });
});
