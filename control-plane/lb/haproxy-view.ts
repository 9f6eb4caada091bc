/**
 * What HAProxy does with the instances, next to what etcd says, for `shardgate-ctl status`: each
 * server of the backend as the runtime socket shows it, and a line for each one HAProxy sends
 * fewer requests than etcd's weight asks (in maintenance or drained, by hand or by its agent;
 * down by its checks; another weight) and each weighted registered instance without a server.
 * Before, `status` showed `api-1=1 … ready` while HAProxy, its server in maintenance by hand,
 * sent it nothing (an outside check).
 *
 * Asked only when a socket file is there (`status` runs on any host; only HAProxy's has one), for
 * at most 1 s; a failure is shown as such, never fatal to `status`.
 */
import { existsSync } from 'node:fs';
import type { ConfigSnapshot } from '../../src/config/config-state.js';
import { type ServerState, showServers } from './haproxy-runtime.js';

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
  snap: Pick<ConfigSnapshot, 'lbWeights' | 'instances'>,
): Promise<HaproxyView | undefined> {
  if (!existsSync(socket)) return undefined;
  let servers: ServerState[];
  try {
    servers = await showServers(socket, backend);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { socket, backend, servers: null, error: message, differences: [] };
  }
  return { socket, backend, servers, differences: differences(servers, snap) };
}

export function differences(
  servers: readonly ServerState[],
  snap: Pick<ConfigSnapshot, 'lbWeights' | 'instances'>,
): string[] {
  const lines: string[] = [];
  for (const s of servers) {
    const wanted = snap.lbWeights.get(s.name) ?? s.initialWeight;
    const source = snap.lbWeights.has(s.name) ? 'in etcd' : 'in haproxy.cfg, no key in etcd';
    if (wanted === 0) continue;
    if (s.maintenance) lines.push(`${s.name} is in maintenance in HAProxy: it gets no requests`);
    else if (s.draining) lines.push(`${s.name} is drained in HAProxy: it gets no new requests`);
    else if (!s.running) lines.push(`${s.name} is down in HAProxy (its checks fail): it gets no requests`);
    else if (s.weight === 0)
      lines.push(`${s.name} has weight 0 in HAProxy (${wanted} ${source}): it gets no requests`);
    else if (s.weight !== wanted)
      lines.push(
        `${s.name} has weight ${s.weight} in HAProxy, ${wanted} ${source} (its agent lowers it while the instance lags or its breakers are open)`,
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
