/**
 * The `redis` breaker is listed at `/health/circuit-breakers` as soon as an instance answers, as
 * the MySQL breakers are; an outside check found it missing until the instance's first cached
 * read, so an operator's dashboard had no row for it on a fresh instance.
 *
 * The entry runs from source with its dependencies at a closed port (helpers/start-entry.ts):
 * no call to Redis is ever made, and the local stack is left alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { waitFor } from './helpers/wait-for.js';

afterEach(stopStartedEntries);

describe('/health/circuit-breakers on a fresh instance', () => {
  it('lists the redis breaker, closed, before any call to Redis', async () => {
    const port = await freePort('127.0.0.1');
    const agentPort = await freePort('127.0.0.1');
    const api = startEntry('src/entry/node.ts', {
      SHARDGATE_LISTEN_HOST: '127.0.0.1',
      PORT: String(port),
      SHARDGATE_AGENT_PORT: String(agentPort),
    });
    const body = await waitFor(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`exited ${api.child.exitCode}: ${api.stderr()}`);
        const res = await fetch(`http://127.0.0.1:${port}/health/circuit-breakers`).catch(() => undefined);
        return res?.ok ? ((await res.json()) as { breakers: { name: string; state: string }[] }) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'the fresh instance answering /health/circuit-breakers' },
    );
    expect(body.breakers.find((b) => b.name === 'redis')).toMatchObject({ kind: 'redis', state: 'closed' });
  });
});
