/**
 * Whether a MySQL address takes a TCP connection at all: the check `shards add`, `set-master`
 * and `add-replica` make before they write an address, so a typo or a server that is not up is
 * caught before tenants are routed to it. Only a TCP connect (node:net), no credentials, no
 * protocol: the connection is closed as soon as it is established.
 */
import { connect } from 'node:net';

export const REACH_TIMEOUT_MS = 2000;

/** undefined when `host:port` accepted a TCP connection within the timeout, else why not */
export function tcpProbe(
  host: string,
  port: number,
  timeoutMs = REACH_TIMEOUT_MS,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (error?: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(error);
    };
    const timer = setTimeout(() => done(`no TCP connection within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => done());
    socket.once('error', (e: NodeJS.ErrnoException) => {
      // an AggregateError (several addresses tried) may have an empty message but has a code
      const message = e.message || e.code || 'connection failed';
      done(e.code && !message.includes(e.code) ? `${e.code}: ${message}` : message);
    });
  });
}

export interface Endpoint {
  /** what the address is, e.g. `master`, `replica` */
  what: string;
  host: string;
  port: number;
}

/** Probe every endpoint at once; the ones that did not connect, each with its reason. */
export async function unreachable(endpoints: Endpoint[]): Promise<{ endpoint: Endpoint; error: string }[]> {
  const results = await Promise.all(
    endpoints.map(async (endpoint) => ({ endpoint, error: await tcpProbe(endpoint.host, endpoint.port) })),
  );
  return results.flatMap((r) => (r.error === undefined ? [] : [{ endpoint: r.endpoint, error: r.error }]));
}
