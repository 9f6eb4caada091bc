/**
 * One tenant's writes waiting on their own row locks neither take its shard master's connections
 * from the other tenants (src/db/connection-shares.ts) nor open the master's breaker for them
 * (circuit-breaker.ts `hungBy`), also when the lock is released and taken again while they wait.
 * Against the local stack: a root session holds a row lock on the noisy tenant's book, 3 s at a
 * time, while 20 of its PATCHes at a time wait on it (each given up at the master breaker's call
 * timeout), all sent to one instance, whose pool has 10 connections; the quiet tenant, on the
 * same shard, adds books meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { breakerSettingsInForce } from './helpers/live-config.js';
import { rootConnection } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const shard = topology.shards[0]!;
const noisy = uniqueTenantId('share-noisy');
const quiet = uniqueTenantId('share-quiet');
const restores: (() => void)[] = [];
let noisyToken = '';
let quietToken = '';

const book = (title: string) => ({ isbn: '9780131103627', title, author: 'Kernighan', copies: 1 });

async function masterBreakerState(base: string): Promise<string> {
  const body = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    breakers: { name: string; state: string }[];
  };
  return body.breakers.find((b) => b.name === `mysql-master:${shard.id}`)?.state ?? 'none';
}

beforeAll(async () => {
  await createTenant(noisy, shard.id);
  await createTenant(quiet, shard.id);
  noisyToken = (await registerAndLogin(noisy, 'lib-noisy@example.com')).token;
  quietToken = (await registerAndLogin(quiet, 'lib-quiet@example.com')).token;
});

afterAll(() => {
  for (const r of restores.reverse()) r();
  removeTenant(noisy);
  removeTenant(quiet);
});

describe("a tenant's row-lock waits and the other tenants of its shard", () => {
  it("leave the other tenants' writes their connections and the master's breaker closed", async () => {
    // lock waits held up to 2 s each; 3 hung writes in a row would open the breaker
    const settings = { call_timeout_ms: 2000, failure_threshold: 3 };
    for (const [setting, value] of Object.entries(settings))
      restores.push(etcdOverride(`breakers/mysql-master/${setting}`, String(value)));
    await breakerSettingsInForce('mysql-master', settings);
    const base = INSTANCES[0]!;
    const created = await api('POST', '/v1/books', {
      tenant: noisy,
      token: noisyToken,
      base,
      body: book('hot'),
    });
    expect(created.status).toBe(201);
    const bookId = (created.json as { id: string }).id;

    const lock = await rootConnection(shard.master.port);
    const hold = async () => {
      await lock.query('BEGIN');
      await lock.query('SELECT id FROM books WHERE tenant_id = ? AND id = ? FOR UPDATE', [noisy, bookId]);
    };
    const noisyAnswers: string[] = [];
    const quietAnswers: number[] = [];
    const states = new Set<string>();
    const until = Date.now() + 9000;
    try {
      await hold();
      const patcher = async (n: number) => {
        for (let i = 0; Date.now() < until; i++) {
          const r = await api('PATCH', `/v1/books/${bookId}`, {
            tenant: noisy,
            token: noisyToken,
            base,
            body: { title: `hot ${n}.${i}` },
          });
          noisyAnswers.push(`${r.status} ${(r.json as { code?: string } | undefined)?.code ?? ''}`.trim());
        }
      };
      const patchers = Array.from({ length: 20 }, (_, n) => patcher(n));
      // released and taken again every 3 s: the waiters let through then commit, while those
      // being stopped at that moment run on to their COMMIT too, and their kills find them gone
      const cycles = (async () => {
        while (Date.now() < until - 3000) {
          await new Promise((r) => setTimeout(r, 3000));
          await lock.query('ROLLBACK');
          await hold();
        }
      })();
      // once the noisy tenant's PATCHes hold what they may of the pool
      await new Promise((r) => setTimeout(r, 1000));
      while (Date.now() < until) {
        const r = await api('POST', '/v1/books', {
          tenant: quiet,
          token: quietToken,
          base,
          body: book('calm'),
        });
        quietAnswers.push(r.status);
        states.add(await masterBreakerState(base));
      }
      await Promise.all([...patchers, cycles]);
      states.add(await masterBreakerState(base));
    } finally {
      await lock.query('ROLLBACK').finally(() => lock.end());
    }
    // the noisy tenant's PATCHes went through between the locks, or were told why not
    const told = new Set([
      '200',
      '503 write_contended',
      '503 dependency_busy',
      '503 write_outcome_unknown',
      '503 dependency_unavailable',
    ]);
    expect(noisyAnswers.filter((a) => !told.has(a))).toEqual([]);
    expect(noisyAnswers.filter((a) => a === '503 write_contended').length).toBeGreaterThan(10);
    // beyond its share (7 of 10), the noisy tenant's own PATCHes waited for one of its own
    expect(noisyAnswers.filter((a) => a === '503 dependency_busy').length).toBeGreaterThan(0);
    // before, its 20 waits took all 10 connections, and the quiet tenant's writes waited in the
    // pool's queue behind them (4 writes in 5 s, then `dependency_busy`)
    expect(quietAnswers.length).toBeGreaterThanOrEqual(20);
    expect(quietAnswers.filter((s) => s !== 201)).toEqual([]);
    expect([...states]).toEqual(['closed']);
  }, 40_000);
});
