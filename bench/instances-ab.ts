/**
 * `npx tsx bench/instances-ab.ts [scenario-key] [rounds]` (defaults: loans, 6) — one API instance
 * or two behind HAProxy on this box? The scenario's closed loop through HAProxy (:8080), as in
 * `npm run bench`, in alternating rounds (bench/alternate.ts): with `api-2` at its weight in etcd
 * (`lb/weights/api-2`, as found, at least 1) and with it at 0 (drained), so HAProxy sends every
 * request to `api-1`. Before each round the weight is put with etcdctl, and the round waits until
 * HAProxy's runtime API shows it (lb-sync applies it); each round prints the share `api-2`
 * served. The weight is put back at the end, also after a failure.
 *
 * `AB_SECONDS` (default 6) sets each round's length. Needs the local stack up; the tenants it
 * creates are removed from the etcd directory at the end (their rows stay on the shards).
 */
import { type ServerState, showServers } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { alternate } from './alternate.js';
import { CACHE_KEYS, HAPROXY, INSTANCES, metricByLabel, preflight, setCache } from './api-state.js';
import { etcdDel, etcdGet, etcdPut, remember } from './etcd.js';
import { closedLoop } from './load.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.AB_SECONDS ?? 6);
const SECOND = topology.apis[1]!.id;
const WEIGHT_KEY = `lb/weights/${SECOND}`;

/**
 * Put the second instance's weight and wait until HAProxy has it in force: lb-sync turns 0 into
 * `state drain` (no new requests) and any other weight into that weight, ready.
 */
async function setWeight(weight: string): Promise<void> {
  await etcdPut(WEIGHT_KEY, weight);
  const applied = (s: ServerState | undefined) =>
    s !== undefined && (weight === '0' ? s.draining : !s.draining && s.weight === Number(weight));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const servers = await showServers(HAPROXY_SOCKET, topology.haproxy.backend);
    if (applied(servers.find((s) => s.name === SECOND))) return;
    if (Date.now() > deadline) throw new Error(`HAProxy did not apply ${WEIGHT_KEY}=${weight} within 15 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function main(): Promise<void> {
  const [key = 'loans', roundsArg = '6'] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error('usage: bench/instances-ab.ts [scenario-key] [rounds ≥ 1]');
  await preflight();
  const found = (await etcdGet(WEIGHT_KEY)) ?? '1';
  const both = Number(found) > 0 ? found : '1';
  const tag = runTag();
  const restore = await remember([...CACHE_KEYS, WEIGHT_KEY]);
  try {
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const s = apiScenario(scenarios(fixtures), key);
    if (s.cache !== undefined) await setCache(s.cache, hotBookRequest(fixtures), INSTANCES, s.near);
    const run = async () => {
      const seen0 = await metricByLabel('http_request_duration_seconds_count', 'instance');
      const out = await closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: SECONDS });
      const seen1 = await metricByLabel('http_request_duration_seconds_count', 'instance');
      const served = (id: string) => (seen1[id] ?? 0) - (seen0[id] ?? 0);
      const all = topology.apis.reduce((a, i) => a + served(i.id), 0);
      console.log(
        `  ${SECOND} served ${all > 0 ? ((served(SECOND) / all) * 100).toFixed(1) : '–'} % of the requests`,
      );
      return out;
    };
    await setWeight(both);
    await closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: 2 });
    await alternate(`${s.name} through HAProxy, ${SECONDS} s each at ${s.connections} connections`, rounds, [
      { name: `both instances (${SECOND} weight ${both})`, enter: () => setWeight(both), run },
      { name: `${topology.apis[0]!.id} alone (${SECOND} weight 0)`, enter: () => setWeight('0'), run },
    ]);
  } finally {
    await restore();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(
    `instances-ab failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
