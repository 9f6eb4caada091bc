/**
 * A TCP relay of a test's own in front of a server of the local stack, whose path the test
 * breaks and heals, as an outside check's userspace proxy does:
 * - `pass`: every byte forwarded both ways;
 * - `reset`: the connections it holds are reset, and each new one is reset as it is accepted
 *   (the client sees ECONNRESET: a path that refuses);
 * - `blackhole`: connections it holds stop forwarding, and new ones are accepted and never
 *   answered nor forwarded (the client waits for its own timeouts).
 * Connections made in one mode keep that mode's treatment: a connection opened in `blackhole` is
 * never forwarded, even after `pass` (as a proxy that dropped its packets); nor is the server's
 * close of a connection blackholed (it reaches the client only when the client closes).
 */
import { createServer, type Server, Socket } from 'node:net';
import { topology } from '../../stack/topology.js';

export type RelayMode = 'pass' | 'reset' | 'blackhole';

export interface FaultRelay {
  port: number;
  mode(mode: RelayMode): void;
  /** connections accepted so far */
  accepted(): number;
  close(): void;
}

export function faultRelay(upstreamPort: number): Promise<FaultRelay> {
  let mode: RelayMode = 'pass';
  let accepted = 0;
  const pairs = new Set<{ client: Socket; upstream?: Socket; forward: boolean }>();
  const server: Server = createServer((client) => {
    accepted++;
    client.on('error', () => {});
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const pair: { client: Socket; upstream?: Socket; forward: boolean } = {
      client,
      forward: mode === 'pass',
    };
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on('close', close);
    if (!pair.forward) return; // blackholed: held open, never answered
    const upstream = new Socket();
    pair.upstream = upstream;
    upstream.connect(upstreamPort, topology.host);
    client.on('data', (chunk) => {
      if (pair.forward) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (pair.forward) client.write(chunk);
    });
    // blackholed, the server's own close does not reach the client either (the path is silent
    // both ways: a frozen server's client learns of it by its own timeouts, heartbeats included)
    const upstreamGone = () => {
      if (pair.forward) close();
    };
    upstream.on('error', upstreamGone).on('close', upstreamGone);
  });
  return new Promise((resolve) =>
    server.listen(0, topology.host, () =>
      resolve({
        port: (server.address() as { port: number }).port,
        mode(next) {
          mode = next;
          for (const pair of pairs) {
            if (next === 'reset') {
              pairs.delete(pair);
              pair.client.resetAndDestroy();
              pair.upstream?.destroy();
            } else if (next === 'blackhole') pair.forward = false;
          }
        },
        accepted: () => accepted,
        close() {
          server.close();
          for (const pair of pairs) {
            pair.client.destroy();
            pair.upstream?.destroy();
          }
        },
      }),
    ),
  );
}
