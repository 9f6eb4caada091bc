import { describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { toServerShortage } from '../db/mysql-errors.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { CallTimeoutError } from '../resilience/errors.js';
import { acquireWithin, breakerNodeGuard } from './breaker-node-guard.js';
import type { NodeSession, RunOptions, SqlNode } from './sql-node.js';

const PROBE = { probeId: 'api-test' };
const identity = { name: 'mysql-master:shard-1', kind: 'mysql-master' as const, shardId: 'shard-1' };

function guarded(run: SqlNode['run']): SqlNode {
  const config = new MemoryConfigStore({ initial: { 'breakers/mysql-master/call_timeout_ms': '100' } });
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  return breakerNodeGuard(breakers, PROBE).wrap({ key: '10.0.0.5:3306/shardgate', run }, identity);
}

describe('breaker node guard', () => {
  it('names an unavailable node by its breaker, never by its address', async () => {
    const node = guarded(async () => {
      throw new DependencyUnavailableError('10.0.0.5:3306/shardgate', 'ECONNREFUSED', {
        retryAfterSeconds: 3,
      });
    });
    const error = await node.run(async () => 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as DependencyUnavailableError).dependency).toBe('mysql-master:shard-1');
    expect((error as DependencyUnavailableError).retryAfterSeconds).toBe(3);
    expect((error as Error).message).toBe('mysql-master:shard-1: ECONNREFUSED');
  });

  it("gives a cancellable call the signal of the breaker's call timeout, no other call a signal, and every call a pool wait shorter than that timeout", async () => {
    const seen: (RunOptions | undefined)[] = [];
    const node = guarded(async (fn, options) => {
      seen.push(options);
      return fn({} as NodeSession);
    });
    const hung = node.run(() => new Promise<string>(() => {}), { cancellable: true });
    await expect(hung).rejects.toBeInstanceOf(CallTimeoutError);
    expect(seen[0]?.signal?.aborted).toBe(true);
    expect(seen[0]?.signal?.reason).toBeInstanceOf(CallTimeoutError);
    await node.run(async () => 'read');
    expect(seen[1]?.signal).toBeUndefined();
    // a wait for a busy pool ends as `busy` before the breaker's timeout would count it
    for (const options of seen) expect(options?.acquireWithinMs).toBe(acquireWithin(100));
    expect([acquireWithin(100), acquireWithin(800), acquireWithin(2000)]).toEqual([90, 720, 1900]);
  });

  it("tells `track` the node's own run, which settles after the caller was answered when the breaker gave up on it", async () => {
    let stopped = () => {};
    // a node that stops an abandoned write only after the breaker's grace (a slow KILL)
    const node = guarded(
      (_fn, options) =>
        new Promise((_, reject) => {
          options?.signal?.addEventListener('abort', () => {
            stopped = () => reject(new Error('stopped on the server'));
          });
        }),
    );
    const tracked: Promise<unknown>[] = [];
    let settled = false;
    const call = node.run(async () => 'x', { cancellable: true, track: (run) => tracked.push(run) });
    await expect(call).rejects.toBeInstanceOf(CallTimeoutError);
    expect(tracked).toHaveLength(1);
    void tracked[0]!
      .catch(() => {})
      .then(() => {
        settled = true;
      });
    await new Promise((r) => setTimeout(r, 10));
    expect(settled).toBe(false);
    stopped();
    await tracked[0]!.catch(() => {});
    expect(settled).toBe(true);
  });
});

describe('breaker node guard, half-open', () => {
  it('refuses callers at once while background trials (a position read) probe a node that still hangs', async () => {
    const config = new MemoryConfigStore({
      initial: {
        'breakers/mysql-master/call_timeout_ms': '100',
        'breakers/mysql-master/failure_threshold': '1',
        'breakers/mysql-master/reset_timeout_ms': '100',
      },
    });
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    let hangs = true;
    const trials: string[] = [];
    const session = {
      position: async (role: 'master' | 'replica') => {
        trials.push(role);
        return '0-1-1';
      },
    } as unknown as NodeSession;
    const node = breakerNodeGuard(breakers, PROBE).wrap(
      {
        key: '10.0.0.5:3306/shardgate',
        run: <T>(fn: (s: NodeSession) => Promise<T>): Promise<T> =>
          hangs ? new Promise<T>(() => {}) : fn(session),
      },
      identity,
    );
    await expect(node.run(async () => 'x')).rejects.toBeInstanceOf(CallTimeoutError); // opens it
    await new Promise((r) => setTimeout(r, 150));
    const breaker = breakers.get(identity.name, identity.kind);
    expect(breaker.state).toBe('half_open');
    // still hanging: the caller is refused at once (before any timer could fire), not after the
    // call timeout
    let refused = false;
    const refusal = node
      .run(async () => 'x')
      .catch((e: unknown) => {
        refused = true;
        return e;
      });
    await new Promise((r) => setImmediate(r));
    expect(refused).toBe(true);
    expect(await refusal).toMatchObject({ name: 'BreakerOpenError' });
    // the trial that started meanwhile times out and opens it again; the node comes back, and
    // a later round of trials (position reads of the master) closes it: a caller starts each
    // round, refused meanwhile (polled, so a slow machine only takes longer)
    hangs = false;
    await vi.waitFor(
      async () => {
        await node.run(async () => 'x').catch(() => {});
        expect(breaker.state).toBe('closed');
      },
      { timeout: 3_000, interval: 20 },
    );
    expect(trials.length).toBeGreaterThan(0);
    expect(new Set(trials)).toEqual(new Set(['master']));
    expect(await node.run(async () => 'after')).toBe('after');
  });

  it('opens on the writes a master out of disk space fails, its reads answering between them, and keeps the cause', async () => {
    const config = new MemoryConfigStore({
      initial: {
        'breakers/mysql-master/failure_threshold': '3',
        'breakers/mysql-master/reset_timeout_ms': '60000',
      },
    });
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    // as the node set classifies what MariaDB answered an INSERT on a full tablespace
    const full = toServerShortage(
      '10.0.0.5:3306/shardgate',
      Object.assign(new Error("The table 'members' is full"), {
        errno: 1114,
        code: 'ER_RECORD_FILE_FULL',
        sqlState: 'HY000',
      }),
    );
    const node = breakerNodeGuard(breakers, PROBE).wrap(
      {
        key: '10.0.0.5:3306/shardgate',
        run: async <T>(fn: (s: NodeSession) => Promise<T>, options?: RunOptions): Promise<T> => {
          if (options?.cancellable) throw full;
          return fn({} as NodeSession);
        },
      },
      identity,
    );
    const breaker = breakers.get(identity.name, identity.kind);
    for (let i = 0; i < 3; i++) {
      expect(breaker.state).toBe('closed');
      expect(await node.run(async () => 'read')).toBe('read');
      const error = await node.run(async () => 'write', { cancellable: true }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect(error).toMatchObject({
        dependency: 'mysql-master:shard-1',
        serverShortage: 'disk_space',
        writesOnly: true,
        outcomeUnknown: false,
      });
    }
    expect(breaker.state).toBe('open');
  });
});
