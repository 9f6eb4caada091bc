/**
 * What HAProxy does with the instances, next to what etcd says, for `shardgate-ctl status`: each
 * server of the backend as the runtime socket shows it, and a line for each one HAProxy sends
 * fewer requests than etcd's weight asks (in maintenance or drained, by hand or by its agent;
 * down by its checks; a lower weight, which its agent sets while the instance is unwell), each one
 * with a higher weight than etcd's (not applied yet: the agent never raises a weight), and each
 * weighted registered instance without a server.
 * Before, `status` showed `api-1=1 … ready` while HAProxy, its server in maintenance by hand,
 * sent it nothing (an outside check). Also a line when HAProxy's map of CORS origins (the CORS
 * headers of its own answers, filled by `lb sync`) lists other origins than etcd, or is missing
 * while origins are listed, and for a server whose maint or drain differs in the fallback
 * backend: each the sign of an `lb sync --watch` that is not running.
 *
 * Asked only when a socket file is there (`status` runs on any host; only HAProxy's has one), each
 * command for at most 2 s; a failure is shown as such, never fatal to `status`. A map that cannot
 * be read is a line of its own, the servers still shown.
 */
import { existsSync } from 'node:fs';
import type { ConfigSnapshot } from '../../src/config/config-state.js';
import { percentFor } from '../../src/observability/agent-reply.js';
import { CORS_MAP_FILE } from '../../stack/haproxy-config.js';
import { adminStateOf, mirrorSteps } from './admin-mirror.js';
import { corsMapId, mapKeys, sameOrigins } from './cors-sync.js';
import {
  fallbackBackend,
  haproxyCommand,
  type ServerState,
  showServers,
  UnknownBackendError,
} from './haproxy-runtime.js';

export interface HaproxyView {
  socket: string;
  backend: string;
  /** null when HAProxy could not be asked; then `error` says why */
  servers: ServerState[] | null;
  error?: string;
  /** one line per instance HAProxy treats otherwise than etcd asks */
  differences: string[];
}

/** undefined: no socket file at `socket` (not on HAProxy's host) */
export async function haproxyView(
  socket: string,
  backend: string,
  snap: Pick<ConfigSnapshot, 'lbWeights' | 'instances' | 'cors'>,
): Promise<HaproxyView | undefined> {
  if (!existsSync(socket)) return undefined;
  const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));
  let servers: ServerState[];
  try {
    servers = await showServers(socket, backend);
  } catch (error) {
    return { socket, backend, servers: null, error: messageOf(error), differences: [] };
  }
  let cors: string[];
  try {
    const id = corsMapId(await haproxyCommand(socket, 'show map'));
    const map = id === undefined ? undefined : mapKeys(await haproxyCommand(socket, `show map ${id}`));
    cors = corsDifference(map, snap.cors.allowedOrigins);
  } catch (error) {
    cors = [`HAProxy's ${CORS_MAP_FILE} could not be read (${messageOf(error)})`];
  }
  let fallback: string[];
  try {
    const spare = await showServers(socket, fallbackBackend(backend)).catch((error: unknown) => {
      if (error instanceof UnknownBackendError) return [];
      throw error;
    });
    fallback = [...fallbackInUse(backend, servers, spare), ...fallbackDifferences(backend, servers, spare)];
  } catch (error) {
    fallback = [`HAProxy's backend ${fallbackBackend(backend)} could not be read (${messageOf(error)})`];
  }
  return { socket, backend, servers, differences: [...differences(servers, snap), ...fallback, ...cors] };
}

const stateName = { maint: 'in maintenance', drain: 'drained' } as const;

/** a server HAProxy may send a new request to: up (or in its slowstart), no maint or drain, a weight */
const usable = (s: ServerState) =>
  (s.running || s.starting === true) && !s.maintenance && !s.draining && s.weight > 0;

/**
 * The line saying that the backend has no usable server, so HAProxy serves through its fallback
 * (and to which servers there): the other lines' "it gets no requests" speak of the backend only
 * (an outside check saw api-2 "down … it gets no requests" while the fallback served it).
 */
export function fallbackInUse(
  backend: string,
  main: readonly ServerState[],
  spare: readonly ServerState[],
): string[] {
  if (spare.length === 0 || main.some(usable)) return [];
  const serving = spare.filter(usable).map((s) => s.name);
  const fallback = fallbackBackend(backend);
  return [
    serving.length > 0
      ? `${backend} has no usable server: HAProxy sends requests to ${fallback}, to ${serving.join(', ')}`
      : `${backend} has no usable server, nor has ${fallback}: HAProxy answers 503`,
  ];
}

/**
 * A line for each server whose maint or drain differs between the backend and its fallback, as
 * `lb sync --watch` would set it (admin-mirror.ts): the sign of a daemon that is not running,
 * which matters once the backend has no usable server and the fallback serves.
 */
export function fallbackDifferences(
  backend: string,
  main: readonly ServerState[],
  spare: readonly ServerState[],
): string[] {
  const fallback = fallbackBackend(backend);
  return mirrorSteps(main, spare).map(({ server, state }) =>
    state === 'ready'
      ? `${server} is ${stateName[adminStateOf(spare.find((s) => s.name === server)!)!]} in ${fallback} but not in ${backend}: it gets no requests there once ${backend} has no usable server (is \`lb sync --watch\` running?)`
      : `${server} is ${stateName[state]} in ${backend} but not in ${fallback}: it gets requests there once ${backend} has no usable server (is \`lb sync --watch\` running?)`,
  );
}

const originList = (origins: readonly string[]) => (origins.length === 0 ? 'no origin' : origins.join(', '));

/**
 * The line for a map of CORS origins (`undefined`: HAProxy has none) that is not etcd's list, in
 * any order; none when they match, or when there is no map and no origin is listed.
 */
export function corsDifference(map: readonly string[] | undefined, origins: readonly string[]): string[] {
  if (map === undefined)
    return origins.length === 0
      ? []
      : [`HAProxy has no ${CORS_MAP_FILE} (its config predates it): its own answers carry no CORS header`];
  if (sameOrigins(map, origins)) return [];
  return [
    `HAProxy's ${CORS_MAP_FILE} lists ${originList(map)}, etcd ${originList(origins)}: its own answers follow the map until lb sync runs`,
  ];
}

export function differences(
  servers: readonly ServerState[],
  snap: Pick<ConfigSnapshot, 'lbWeights' | 'instances'>,
): string[] {
  const lines: string[] = [];
  for (const s of servers) {
    const asked = snap.lbWeights.get(s.name) ?? s.initialWeight;
    const source = snap.lbWeights.has(s.name) ? 'in etcd' : 'in haproxy.cfg, no key in etcd';
    if (asked === 0) {
      // a drain that has not reached HAProxy: the instance still gets requests
      if (s.weight > 0 && s.running && !s.maintenance && !s.draining)
        lines.push(
          `${s.name} has weight ${s.weight} in HAProxy, 0 ${source}: it still gets requests (not applied yet: is \`lb sync --watch\` running?)`,
        );
      continue;
    }
    // what HAProxy makes of the agent's whole percentage (agent-reply.ts): the weight asked,
    // or a little more for an initial weight above 100
    const wanted = Math.floor((s.initialWeight * percentFor(asked, s.initialWeight)) / 100);
    if (s.maintenance) lines.push(`${s.name} is in maintenance in HAProxy: it gets no requests`);
    // drained and down (an instance that drained itself and exited): down says more
    else if (s.draining && (s.running || s.starting === true))
      lines.push(`${s.name} is drained in HAProxy: it gets no new requests`);
    else if (!s.running) lines.push(`${s.name} is down in HAProxy (its checks fail): it gets no requests`);
    else if (s.weight === 0)
      lines.push(`${s.name} has weight 0 in HAProxy (${asked} ${source}): it gets no requests`);
    else if (s.weight < wanted)
      lines.push(
        `${s.name} has weight ${s.weight} in HAProxy, ${asked} ${source} (its agent lowers it while the instance lags or its breakers are open)`,
      );
    // above: the agent only ever lowers the weight it is given, so this one is not applied yet
    else if (s.weight > wanted)
      lines.push(
        `${s.name} has weight ${s.weight} in HAProxy, ${asked} ${source} (not applied yet: lb sync sets it and the instance's agent reports it at its next check; is \`lb sync --watch\` running?)`,
      );
  }
  const names = new Set(servers.map((s) => s.name));
  for (const [id, weight] of snap.lbWeights)
    if (weight > 0 && snap.instances.has(id) && !names.has(id))
      lines.push(
        `${id} is registered with weight ${weight} but has no server in HAProxy's backend: it gets no requests`,
      );
  return lines;
}
