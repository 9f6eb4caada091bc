/**
 * An API instance that has not read its config from etcd (here: etcd unreachable since it
 * started) knows no tenant. It must not say a tenant "does not exist": an outside check got 404
 * `tenant_not_found` of an existing tenant from each restarted stack instance for its first
 * ~40 ms. It answers 503 `config_not_loaded` with Retry-After, and /health/ready 503.
 *
 * The instance runs from source with every dependency at a closed port (helpers/start-entry.ts),
 * so it registers nowhere and leaves the local stack alone.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { waitFor } from './helpers/wait-for.js';

afterEach(stopStartedEntries);

describe('an instance without its config', () => {
  it('answers /v1 of a well-formed tenant 503 config_not_loaded with Retry-After, never 404 tenant_not_found', async () => {
    const port = await freePort('127.0.0.1');
    const api = startEntry('src/entry/node.ts', { SHARDGATE_LISTEN_HOST: '127.0.0.1', PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`exited ${api.child.exitCode}: ${api.stderr()}`);
        return (await fetch(`${base}/health`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 30_000, what: 'the instance listening' },
    );
    expect((await fetch(`${base}/health/ready`)).status).toBe(503);
    for (const [method, path] of [
      ['GET', '/v1/books'],
      ['GET', '/v1/books/01M91XGPR7VCQ2JDPMHX1SHFB2'],
      ['POST', '/v1/members'],
    ] as const) {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { 'X-Tenant-ID': 'acme', 'Content-Type': 'application/json' },
        body:
          method === 'POST'
            ? JSON.stringify({ email: 'ann@example.com', name: 'Ann', password: 'correct horse' })
            : undefined,
      });
      expect(res.status, `${method} ${path}`).toBe(503);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await res.json()).toMatchObject({ status: 503, code: 'config_not_loaded' });
    }
    // what needs no config answers as before: a malformed tenant header is 400
    const malformed = await fetch(`${base}/v1/books`, { headers: { 'X-Tenant-ID': 'Not A Tenant' } });
    expect(malformed.status).toBe(400);
  });
});
