/**
 * gRPC's own log lines, from etcd's client (etcd3 runs on @grpc/grpc-js, pinned in package.json
 * to the version etcd3 resolves, so both share one module and one logger). By default grpc-js
 * writes them to stderr as plain text, e.g. "E Connection to dns:127.0.0.1:2379 at
 * 127.0.0.1:2379 rejected by server because of excess pings. Increasing ping interval to 12000
 * ms" after an etcd restart (an outside check), which broke a process's JSON log line by line.
 *
 * `routeGrpcLog(logger)` sends them to the process's logger, one JSON line each, `component:
 * grpc`: its errors as warnings (the only ones at grpc-js's default verbosity), its info and
 * debug lines as such. With no logger (the CLI, which reports its own failures in one line of
 * its own) they are dropped.
 */
import { format } from 'node:util';
import { setLogger } from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';

export function routeGrpcLog(logger: Logger | undefined): void {
  const grpc = logger?.child({ component: 'grpc' });
  setLogger({
    error: (...args: unknown[]) => grpc?.warn({}, format(...args)),
    // only with GRPC_VERBOSITY=INFO or DEBUG (and GRPC_TRACE)
    info: (...args: unknown[]) => grpc?.info({}, format(...args)),
    debug: (...args: unknown[]) => grpc?.debug({}, format(...args)),
  });
}
