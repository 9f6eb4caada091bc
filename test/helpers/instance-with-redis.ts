/**
 * One extra API instance from source beside the stack, with a Redis of the test's choosing (a
 * relay, a redis-server of its own): a Redis fault then touches only this instance, and the
 * stack's instances are left alone. Stopped by `stopStartedEntries` (start-entry.ts).
 */
import { freePort } from '../../bench/ceiling.js';
import { stackEnv } from '../../stack/stack-env.js';
import { api } from './api.js';
import { startEntry } from './start-entry.js';
import { waitFor } from './wait-for.js';

/** starts the instance (`env`: more of its environment) and answers its base URL once it is ready */
export async function startInstanceWithRedis(
  id: string,
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<string> {
  const port = await freePort('127.0.0.1');
  const instance = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    SHARDGATE_INSTANCE_ID: `${id}-${port}`,
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
    SHARDGATE_REDIS_URL: redisUrl,
    SHARDGATE_DRAIN_MS: '0',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (instance.child.exitCode !== null) throw new Error(`exited: ${instance.stderr()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `the instance with Redis ${redisUrl} ready` },
  );
  return base;
}

/** the state of the instance's redis breaker */
export async function redisBreaker(base: string): Promise<{ state: string; failures: number } | undefined> {
  const body = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    breakers: { kind: string; state: string; failures: number }[];
  };
  return body.breakers.find((b) => b.kind === 'redis');
}

/** a book of `tenant` made by its librarian (`token`): its path */
export async function bookPath(tenant: string, token: string, base: string, title: string): Promise<string> {
  const book = await api('POST', '/v1/books', {
    tenant,
    token,
    base,
    body: { isbn: '9780306406157', title, author: 'Redis', copies: 1 },
  });
  if (book.status !== 201) throw new Error(`POST /v1/books: ${book.status}`);
  return `/v1/books/${(book.json as { id: string }).id}`;
}

/** reads `path` 20 times, each expected to bypass the cache (its breaker open): the median ms */
export async function bypassMedianMs(tenant: string, path: string, base: string): Promise<number> {
  const took: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const r = await api('GET', path, { tenant, base });
    if (r.status !== 200 || r.headers.get('x-cache') !== 'BYPASS')
      throw new Error(`read ${i + 1}: ${r.status} X-Cache ${r.headers.get('x-cache')}, not a 200 BYPASS`);
    took.push(performance.now() - t0);
  }
  return took.sort((a, b) => a - b)[10]!;
}
