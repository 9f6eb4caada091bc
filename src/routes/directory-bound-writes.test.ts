import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import type { AppEnv, Services } from '../app-env.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { ok } from '../domain/result.js';
import { ProblemError } from '../http/problem.js';
import { WritesInFlight } from '../routing/writes-in-flight.js';
import { directoryBoundWrites } from './directory-bound-writes.js';

const tenant = { id: 'acme', shardId: 'shard-1' };

function setup() {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const data = new MemoryDataAccess();
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
          await repos.books.insert({
            id: '01J00000000000000000000000',
            isbn: '9780306406157',
            title: 'T',
            author: 'A',
            copies: 1,
            available: 1,
            createdAt: new Date(),
            updatedAt: new Date(),
          });
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
        if (error instanceof ProblemError) return c.json({ code: error.init.code }, error.init.status);
        throw error;
      }
      return c.json({}, 201);
    });
    const r = await app.request('/w', { method: 'POST' });
    expect(r.status).toBe(423);
    expect(await r.json()).toEqual({ code: 'tenant_readonly' });
    expect(statements).toBe(0);
  });
});
