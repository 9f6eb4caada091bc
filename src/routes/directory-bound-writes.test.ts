import type { Context } from 'hono';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv, Services } from '../app-env.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import type { TenantRef, WriteOptions, WriteOutcome, WriteTransaction } from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Result } from '../domain/result.js';
import { ok } from '../domain/result.js';
import { ProblemError } from '../http/problem.js';
import { WritesInFlight } from '../routing/writes-in-flight.js';
import { directoryBoundWrites } from './directory-bound-writes.js';

const tenant = { id: 'acme', shardId: 'shard-1' };

/** memory data that notes the shard each write attempt was sent to */
class ShardRecordingData extends MemoryDataAccess {
  readonly writesTo: string[] = [];
  override write<T>(
    to: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    this.writesTo.push(to.shardId);
    return super.write(to, fn, options);
  }
  readonly readsFrom: string[] = [];
  override read: MemoryDataAccess['read'] = (to, options, fn) => {
    this.readsFrom.push(to.shardId);
    return super.read(to, options, fn);
  };
}

const book = (id: string) => ({
  id,
  isbn: '9780306406157',
  title: 'T',
  author: 'A',
  copies: 1,
  available: 1,
  createdAt: new Date(),
  updatedAt: new Date(),
});

/** answers a directory refusal as its status and code */
function answerProblem(error: unknown, c: Context<AppEnv>) {
  if (error instanceof ProblemError) return c.json({ code: error.init.code }, error.init.status);
  throw error;
}

function setup() {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'shards/shard-2': JSON.stringify({ master: { host: '127.0.0.1', port: 3326 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const data = new ShardRecordingData();
  const writesInFlight = new WritesInFlight();
  const services = { config, data, writesInFlight } as unknown as Services;
  const app = new Hono<AppEnv>();
  app.use(async (c, next) => {
    c.set('services', services);
    c.set('tenant', tenant);
    await next();
  });
  return { app, config, data, writesInFlight };
}

describe('directoryBoundWrites', () => {
  it('a write that goes on after its request was answered is not committed and holds nothing', async () => {
    const { app, data, writesInFlight } = setup();
    let proceed = () => {};
    const gate = new Promise<void>((r) => {
      proceed = r;
    });
    let background: Promise<unknown> | undefined;
    app.post('/w', directoryBoundWrites, (c) => {
      // the answer goes out while the write still runs (as when its breaker gave up on it)
      background = c
        .get('services')
        .data.write(tenant, async (repos) => {
          await gate;
          await repos.books.insert(book('01J00000000000000000000000'));
          return ok(1);
        })
        .catch((e: unknown) => e);
      return c.json({}, 503);
    });
    expect((await app.request('/w', { method: 'POST' })).status).toBe(503);
    proceed();
    const outcome = await background;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toBe('the request was answered before this write reached its COMMIT');
    expect(data.committed.books.size).toBe(0);
    expect(writesInFlight.size).toBe(0);
  });

  it('refuses at the start of an attempt, before any statement, a write whose tenant turned readonly', async () => {
    const { app, config } = setup();
    let statements = 0;
    app.post('/w', directoryBoundWrites, async (c) => {
      config.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
      try {
        await c.get('services').data.write(tenant, async () => {
          statements++;
          return ok(1);
        });
      } catch (error) {
        return answerProblem(error, c);
      }
      return c.json({}, 201);
    });
    const r = await app.request('/w', { method: 'POST' });
    expect(r.status).toBe(423);
    expect(await r.json()).toEqual({ code: 'tenant_readonly' });
    expect(statements).toBe(0);
  });

  it('sends a write whose tenant was switched to another shard, and is admitted there, to that shard: found before its first statement', async () => {
    const { app, config, data, writesInFlight } = setup();
    const held: string[] = [];
    const hold = writesInFlight.hold.bind(writesInFlight);
    writesInFlight.hold = (t, revision) => {
      held.push(t.shardId);
      return hold(t, revision);
    };
    const answered: Record<string, unknown> = {};
    let statements = 0;
    app.post('/w', directoryBoundWrites, async (c) => {
      config.put('tenants/acme', '{"shard":"shard-2","status":"active"}');
      const data = c.get('services').data;
      // the handler passes the tenant it was given when the request arrived
      const outcome = await data.write(tenant, async (repos) => {
        statements++;
        await repos.books.insert(book('01J00000000000000000000001'));
        return ok(1);
      });
      // a second write of the request (the idempotency answer) and a read go there too
      await data.write(tenant, async () => ok(2));
      await data.read(tenant, { from: 'master' }, async () => null);
      answered.position = outcome.position?.shardId;
      answered.tenant = c.get('tenant').shardId;
      return c.json({}, 201);
    });
    const r = await app.request('/w', { method: 'POST' });
    expect(r.status).toBe(201);
    expect(data.writesTo).toEqual(['shard-2', 'shard-2']);
    expect(statements).toBe(1);
    expect(data.readsFrom).toEqual(['shard-2']);
    expect(answered).toMatchObject({ position: 'shard-2', tenant: 'shard-2' });
    expect(data.committed.books.size).toBe(1);
    expect(held).toEqual(['shard-2']);
    expect(writesInFlight.size).toBe(0);
  });

  it('a write whose tenant was switched between its statements and its COMMIT is rolled back there and run again on the new shard', async () => {
    const { app, config, data } = setup();
    let attempts = 0;
    app.post('/w', directoryBoundWrites, async (c) => {
      const outcome = await c.get('services').data.write(tenant, async (repos) => {
        attempts++;
        await repos.books.insert(book('01J00000000000000000000002'));
        // the move switches the tenant while this attempt's statements ran (on shard-1)
        if (attempts === 1) config.put('tenants/acme', '{"shard":"shard-2","status":"active"}');
        return ok(1);
      });
      return c.json({ shard: outcome.position?.shardId }, 201);
    });
    const r = await app.request('/w', { method: 'POST' });
    expect(r.status).toBe(201);
    expect(await r.json()).toEqual({ shard: 'shard-2' });
    expect(data.writesTo).toEqual(['shard-1', 'shard-2']);
    expect(attempts).toBe(2);
    expect(data.committed.books.size).toBe(1);
  });

  it("answers the new entry's refusal when the new shard does not admit the write, and tenant_moved after the tenant moved again and again", async () => {
    const cases: [string, (config: MemoryConfigStore, attempt: number) => void, number, string][] = [
      [
        'switched, still readonly',
        (config) => config.put('tenants/acme', '{"shard":"shard-2","status":"readonly"}'),
        423,
        'tenant_readonly',
      ],
      ['switched, then removed', (config) => config.delete('tenants/acme'), 404, 'tenant_not_found'],
      [
        'switched at every attempt',
        (config, attempt) =>
          config.put('tenants/acme', `{"shard":"shard-${attempt % 2 === 0 ? 2 : 1}","status":"active"}`),
        503,
        'tenant_moved',
      ],
    ];
    for (const [what, change, status, code] of cases) {
      const { app, config, data } = setup();
      let attempts = 0;
      app.post('/w', directoryBoundWrites, async (c) => {
        change(config, 0);
        try {
          await c.get('services').data.write(tenant, async () => {
            attempts++;
            change(config, attempts);
            return ok(1);
          });
        } catch (error) {
          return answerProblem(error, c);
        }
        return c.json({}, 201);
      });
      const r = await app.request('/w', { method: 'POST' });
      expect(r.status, what).toBe(status);
      expect(await r.json(), what).toEqual({ code });
      expect(data.committed.books.size, what).toBe(0);
    }
  });

  it('a write answered before its run on the master settled (its breaker gave up on it) holds the revision report until that run settled', async () => {
    const { app, data, writesInFlight } = setup();
    let settle = () => {};
    const run = new Promise<void>((r) => {
      settle = r;
    });
    // as the SQL adapter over a master that hangs at the COMMIT: admitted, the COMMIT sent, the
    // breaker's call timeout answers the caller while the run still stops the server thread
    data.write = async (_to, _fn, options) => {
      options?.track?.(run);
      options?.admitCommit?.();
      throw new Error('write_outcome_unknown');
    };
    app.post('/w', directoryBoundWrites, async (c) => {
      await c
        .get('services')
        .data.write(tenant, async () => ok(1))
        .catch(() => {});
      return c.json({ code: 'write_outcome_unknown' }, 503);
    });
    expect((await app.request('/w', { method: 'POST' })).status).toBe(503);
    expect(writesInFlight.size).toBe(1);
    settle();
    await run;
    await Promise.resolve();
    expect(writesInFlight.size).toBe(0);
  });
});
