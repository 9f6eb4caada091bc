import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { CallTimeoutError } from '../resilience/errors.js';
import { breakerNodeGuard } from './breaker-node-guard.js';
import type { NodeSession, RunOptions, SqlNode } from './sql-node.js';

const identity = { name: 'mysql-master:shard-1', kind: 'mysql-master' as const, shardId: 'shard-1' };

function guarded(run: SqlNode['run']): SqlNode {
  const config = new MemoryConfigStore({ initial: { 'breakers/mysql-master/call_timeout_ms': '100' } });
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  return breakerNodeGuard(breakers).wrap({ key: '10.0.0.5:3306/shardgate', run }, identity);
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

  it("gives a cancellable call the signal of the breaker's call timeout, and no other call a signal", async () => {
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
    expect(seen[1]).toBeUndefined();
  });
});
