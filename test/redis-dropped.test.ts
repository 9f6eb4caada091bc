/**
 * A steady Redis connection dropped while cached reads run (`CLIENT KILL` of one instance's
 * connections, as a proxy restart or an idle-timeout would): the client opens it again at once, and the
 * commands refused in between count for neither side of the `redis` breaker
 * (src/cache/not-connected-cause.ts). Before, the first reconnect came after 100 ms and every
 * command meanwhile counted: the breaker opened (5 failures) and the reads bypassed the cache for
 * about a second.
 *
 * One extra API instance runs from source against the stack's Redis (the kill touches only its
 * connections); its tenant is made here and removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STABLE_MS } from '../src/cache/not-connected-cause.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { bookPath, redisBreaker, startInstanceWithRedis } from './helpers/instance-with-redis.js';
import { killRedisConnections, redisLocalPorts } from './helpers/redis-sockets.js';
import { stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('redisdrop');
let base = '';

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  base = await startInstanceWithRedis('redisdrop', `redis://${topology.host}:${topology.redis.port}`);
}, 60_000);

afterAll(() => {
  stopStartedEntries();
  removeTenant(tenant);
});

/** the pid of the instance listening on `port` */
function pidOf(port: string): number {
  const line = execFileSync('ss', ['-Htlnp', `( sport = :${port} )`], { encoding: 'utf8' });
  return Number(/pid=(\d+),/.exec(line)![1]);
}

describe('a Redis connection dropped under cached reads', () => {
  it('is opened again at once, and the redis breaker stays closed', async () => {
    const { token } = await registerAndLogin(tenant, 'lib@example.com', { base });
    const path = await bookPath(tenant, token, base, 'Dropped');
    let reading = true;
    const answers: string[] = [];
    const reader = async () => {
      while (reading) {
        const r = await api('GET', path, { tenant, base });
        answers.push(`${r.status} ${r.headers.get('x-cache')}`);
      }
    };
    const readers = Array.from({ length: 4 }, reader);
    // warm: the reads are served from Redis
    const warm = async () => {
      while (!answers.slice(-20).every((a) => a === '200 HIT') || answers.length < 20)
        await new Promise((r) => setTimeout(r, 20));
    };
    await warm();
    // steady connections: only the drop of one ready for STABLE_MS earns the grace (a server that
    // drops every connection just after its handshake must be counted)
    await new Promise((r) => setTimeout(r, STABLE_MS + 200));
    const pid = pidOf(new URL(base).port);
    const before = redisLocalPorts(pid);
    expect(before.length, 'the cache and login throttle connections').toBeGreaterThanOrEqual(2);
    const atKill = answers.length;
    killRedisConnections(before);
    // the breaker, every 50 ms for 2 s (an opening lasts at least 1 s: none is missed)
    const states: string[] = [];
    for (let t = 0; t < 40; t++) {
      states.push((await redisBreaker(base))!.state);
      await new Promise((r) => setTimeout(r, 50));
    }
    reading = false;
    await Promise.all(readers);
    const after = answers.slice(atKill);
    expect(after.length, 'reads ran during the 2 s after the kill').toBeGreaterThan(40);
    expect(after.filter((a) => !a.startsWith('200 '))).toEqual([]);
    expect([...new Set(states)]).toEqual(['closed']);
    // the connections are new ones, and the reads were served from Redis again at the end
    expect(redisLocalPorts(pid).some((p) => before.includes(p))).toBe(false);
    expect(after.slice(-10)).toEqual(Array(10).fill('200 HIT'));
  });
});
