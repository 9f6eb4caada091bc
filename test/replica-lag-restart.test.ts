/**
 * An instance that starts while a replica lags does not read it until it knows the lag: the
 * replica lacks the first master position the instance sees, so it is behind by at least that
 * position's age and maybe much more (src/routing/master-timeline.ts). Before, the new instance
 * measured the lag from its own first sample (about 0 s) and served token-less reads from a
 * replica whose SQL thread had been stopped, for up to `replication/max_lag_seconds` (a review:
 * hours-stale data for 5 s after each restart, `shards set-master` or `add-replica`).
 *
 * The extra instance runs from source beside the stack (helpers/instance-with-redis.ts, with the
 * stack's Redis); the read cache is off so that every read shows where it went.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stackEnv } from '../stack/stack-env.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { startInstanceWithRedis } from './helpers/instance-with-redis.js';
import { configInForce } from './helpers/live-config.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = 'shard-1';
const tenant = uniqueTenantId('lag-restart');
const replicaPort = node(shard, 'replica').port;
const restores: (() => void)[] = [];

beforeAll(async () => {
  await createTenant(tenant, shard);
  // long enough that a lag measured from the new instance's first sample stays under it
  restores.push(etcdOverride('replication/max_lag_seconds', '60'));
  restores.push(etcdOverride('cache/enabled', 'false'));
  await configInForce(
    (a) => !a.cache.enabled && a.replication.maxLagSeconds === 60,
    'cache/enabled false, replication/max_lag_seconds 60',
  );
});

afterAll(async () => {
  await rootQuery(replicaPort, 'START SLAVE SQL_THREAD').catch(() => {});
  stopStartedEntries();
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
});

describe('an instance started while a replica lags', () => {
  it('reads the master until the replica has applied what the master had at its start', async () => {
    const { token } = await registerAndLogin(tenant, 'librarian@example.com');
    await waitFor(
      async () =>
        (await api('GET', '/v1/books?limit=1', { tenant })).headers.get('X-Read-From') === 'replica',
      { timeoutMs: 10_000, what: 'reads from the replica while replication runs' },
    );
    await rootQuery(replicaPort, 'STOP SLAVE SQL_THREAD');
    const created = await api('POST', '/v1/books', {
      tenant,
      base: INSTANCES[0],
      token,
      body: { isbn: '0306406152', title: 'Written before the restart', author: 'Lag', copies: 1 },
    });
    expect(created.status).toBe(201);
    const path = `/v1/books/${created.json.id}`;

    const base = await startInstanceWithRedis('lag-restart', stackEnv().SHARDGATE_REDIS_URL!);
    // without a token: from the master, which has the book; the replica does not
    for (let i = 0; i < 5; i++) {
      const read = await api('GET', path, { tenant, base });
      expect([read.status, read.headers.get('X-Read-From')]).toEqual([200, 'master']);
      await new Promise((r) => setTimeout(r, 300));
    }
    const replication = (await (await fetch(`${base}/health/replication`)).json()) as {
      shards: { id: string; replicas: { state: string; lagSeconds: number | null }[] }[];
    };
    const replica = replication.shards.find((s) => s.id === shard)?.replicas[0];
    expect(replica?.state).not.toBe('admitted');

    // caught up: the replica is read again
    await rootQuery(replicaPort, 'START SLAVE SQL_THREAD');
    await waitFor(
      async () => (await api('GET', path, { tenant, base })).headers.get('X-Read-From') === 'replica',
      {
        timeoutMs: 15_000,
        intervalMs: 200,
        what: 'the new instance reading the caught-up replica',
      },
    );
    const back = await api('GET', path, { tenant, base });
    expect([back.status, back.json.title]).toEqual([200, 'Written before the restart']);
  });
});
