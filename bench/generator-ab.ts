/**
 * `npx tsx bench/generator-ab.ts [rounds]` (default 8) — does the load generator hold the writes?
 * Borrow + return of the lending tenants through HAProxy, the same 32-connection closed loop as
 * `npm run bench`, driven by autocannon (bench/load.ts) and by wrk (bench/wrk.ts `wrkLending`)
 * in alternating rounds (bench/alternate.ts: the rate, the p99 and the whole machine's CPU per
 * write, wrk's included, and their paired summary).
 *
 * `AB_SECONDS` (default 6) sets each round's length. Needs the local stack up; the tenants it
 * creates are removed from the etcd directory at the end (their rows stay on the shards).
 */
import { alternate } from './alternate.js';
import { CACHE_KEYS, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { etcdDel, remember } from './etcd.js';
import { closedLoop } from './load.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';
import { wrkLending } from './wrk.js';

const SECONDS = Number(process.env.AB_SECONDS ?? 6);

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 8);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: bench/generator-ab.ts [rounds ≥ 1]');
  await preflight();
  const tag = runTag();
  const restoreCache = await remember(CACHE_KEYS);
  try {
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const s = apiScenario(scenarios(fixtures), 'loans');
    await setCache(s.cache ?? true, hotBookRequest(fixtures), INSTANCES, s.near);
    await closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: 2 });
    await alternate(`${s.name} through HAProxy, ${SECONDS} s each at ${s.connections} connections`, rounds, [
      {
        name: 'autocannon',
        run: () => closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: SECONDS }),
      },
      {
        name: 'wrk',
        run: () => wrkLending(HAPROXY, fixtures.lenders, { connections: s.connections, seconds: SECONDS }),
      },
    ]);
  } finally {
    await restoreCache();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(
    `generator-ab failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
