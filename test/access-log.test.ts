/**
 * `http/access_log` on the running instances (src/config/access-log-mode.ts): put with etcdctl it
 * applies live, and the instance that answered writes one `request` line for each answer the
 * mode selects, with the request id and tenant, never the caller's token. Reads the stack's
 * instance logs; the key is restored (by default absent: off) after.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride, etcdPut } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const KEY = 'http/access_log';
const logOf = (instance: string) => join(LOG_DIR, `${instance}.log`);
let restore: (() => void) | undefined;
let tenant: string | undefined;

afterAll(() => {
  restore?.();
  if (tenant) removeTenant(tenant);
});

/** every instance's log size now, to read what is written after */
const sizes = () => new Map(topology.apis.map((a) => [a.id, statSync(logOf(a.id)).size]));

/** the `request` lines written since `from` that carry `requestId` */
function requestLines(from: Map<string, number>, requestId: string): Record<string, unknown>[] {
  return topology.apis.flatMap((a) =>
    readFileSync(logOf(a.id))
      .subarray(from.get(a.id))
      .toString('utf8')
      .split('\n')
      .filter((line) => line.includes('"msg":"request"') && line.includes(requestId))
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  );
}

const mode = (value: string) =>
  configInForce((a) => (a.http as { accessLog?: string }).accessLog === value, `${KEY} ${value}`, INSTANCES);

describe('http/access_log', () => {
  it('logs the answers the mode selects, live, on the instance that answered', async () => {
    tenant = uniqueTenantId('accesslog');
    await createTenant(tenant, 'shard-1');
    const { token } = await registerAndLogin(tenant, 'ann@example.com');

    restore = etcdOverride(KEY, 'errors');
    await mode('errors');
    let from = sizes();
    const ok = randomUUID();
    const refused = randomUUID();
    const okAnswer = await api('GET', '/v1/members/me', { tenant, token, headers: { 'X-Request-Id': ok } });
    const refusedAnswer = await api('GET', '/v1/loans', {
      tenant,
      token: `${token}x`,
      headers: { 'X-Request-Id': refused },
    });
    expect([okAnswer.status, refusedAnswer.status]).toEqual([200, 401]);
    const refusedLines = await waitFor(
      async () => {
        const lines = requestLines(from, refused);
        return lines.length > 0 ? lines : undefined;
      },
      { timeoutMs: 3000, what: 'the 401 logged' },
    );
    expect(refusedLines).toHaveLength(1);
    expect(refusedLines[0]).toMatchObject({
      level: 30,
      requestId: refused,
      method: 'GET',
      path: '/v1/loans',
      route: '/v1/loans',
      status: 401,
      tenant,
      instance: refusedAnswer.headers.get('X-Served-By'),
    });
    expect(JSON.stringify(refusedLines)).not.toContain(token);
    expect(requestLines(from, ok)).toEqual([]);

    // all: the 200 too, from the instance that served it
    etcdPut(KEY, 'all');
    await mode('all');
    from = sizes();
    const again = randomUUID();
    const answer = await api('GET', '/v1/members/me', { tenant, token, headers: { 'X-Request-Id': again } });
    expect(answer.status).toBe(200);
    const lines = await waitFor(
      async () => {
        const found = requestLines(from, again);
        return found.length > 0 ? found : undefined;
      },
      { timeoutMs: 3000, what: 'the 200 logged' },
    );
    expect(lines).toEqual([
      expect.objectContaining({
        status: 200,
        route: '/v1/members/me',
        shard: answer.headers.get('X-Shard'),
        readFrom: answer.headers.get('X-Read-From'),
        instance: answer.headers.get('X-Served-By'),
      }),
    ]);
    expect(typeof lines[0]?.ms).toBe('number');

    // an invalid value is rejected by every instance, the last good one kept
    const rejectedAt = INSTANCES.map((base) => `${base}/health/config`);
    etcdPut(KEY, 'verbose');
    await waitFor(
      async () =>
        (
          await Promise.all(
            rejectedAt.map(
              async (url) =>
                (await (await fetch(url)).json()) as { rejected: { key: string; reason: string }[] },
            ),
          )
        ).every((h) =>
          h.rejected.some((r) => r.key === KEY && r.reason.includes('must be one of off, errors, all')),
        ),
      { timeoutMs: 3000, what: 'the invalid value rejected' },
    );
    await mode('all');
  });
});
