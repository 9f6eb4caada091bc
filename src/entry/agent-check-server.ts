/**
 * TCP responder for HAProxy `agent-check` (node-only): on every connection, write one line
 * (see agentReply) and close. The first replies lead with `ready` (READY_REPLIES of them, and
 * all within READY_MS of the start): they end the drain the instance's predecessor set as it shut
 * down; later ones leave the server's administrative state to the operator. Event-loop lag is sampled with perf_hooks' histogram and reset
 * after each answer, so the figure covers the last agent interval.
 * Listens on `host` only (SHARDGATE_LISTEN_HOST, loopback by default): the reply tells whether
 * the instance drains and how its breakers and event loop stand, which only HAProxy needs.
 */
import { createServer, type Server } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Services } from '../app-env.js';
import { agentReply } from '../observability/agent-reply.js';

/** replies that lead with `ready` after a start: at least this many, and for at least this long */
export const READY_REPLIES = 3;
export const READY_MS = 5000;

export function startAgentCheckServer({
  host,
  port,
  services,
  draining,
  initialWeight,
}: {
  /** the address to bind (an IP literal or a hostname); HAProxy must reach it there */
  host: string;
  port: number;
  services: Pick<Services, 'breakers' | 'logger' | 'config' | 'instanceId'>;
  draining: () => boolean;
  /** the server's weight in haproxy.cfg, which HAProxy applies agent percentages to */
  initialWeight: number;
}): Server {
  const delay = monitorEventLoopDelay({ resolution: 20 });
  delay.enable();
  const started = performance.now();
  let replies = 0;
  const server = createServer((sock) => {
    replies++;
    const lagMs = delay.count > 0 ? delay.percentile(99) / 1e6 : 0;
    delay.reset();
    sock.end(
      agentReply({
        draining: draining(),
        eventLoopLagMs: lagMs,
        breakers: services.breakers.list(),
        weight: services.config.current().lbWeights.get(services.instanceId),
        initialWeight,
        announceReady: replies <= READY_REPLIES || performance.now() - started < READY_MS,
      }),
    );
    sock.on('error', () => {});
  });
  server.on('error', (error) =>
    services.logger.error({ err: String(error), host, port }, 'agent-check server failed'),
  );
  server.listen(port, host);
  return server;
}
