/**
 * One way to build an etcd3 client for the API, the worker and the CLI: gRPC keepalives so a dead
 * peer is noticed within seconds, a per-call deadline, and reconnects (gRPC's and the watch's)
 * at most 500 ms apart, so a watch resumes quickly after etcd comes back (the library default waits
 * up to 30 s). The contract gives a change 2 s to apply; with both backoffs capped at 2 s, a put
 * made 1.3 s after etcd restarted took 1.7–2.9 s to apply in an outside check, as the two waits
 * add up. A refused connect every 500 ms per process is what the cap costs while etcd is down.
 *
 * etcd3 also puts each endpoint behind a circuit breaker of its own (3 recoverable errors in a
 * row), which by default stays open 5 s: every call and every watch reconnect in that time fails
 * without being tried, so a put made just after etcd came back applied after up to 5 s more (the
 * outage test failed 3 of 3 local runs at 2.2–2.6 s). It opens for RECONNECT_MAX_MS here: with
 * several endpoints a failed one is still skipped, and one that is back is tried again as soon as
 * gRPC would reconnect to it.
 *
 * There is no dial timeout: etcd3 1.1.2 reads its `dialTimeout` option nowhere (microsoft/etcd3#137).
 * A unary call to an etcd that takes TCP connections but never answers (SIGSTOPped) waits in gRPC's
 * connect phase until its deadline; the CLI dials first with a budget of its own
 * (control-plane/ctl-context.ts).
 */
import { ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { Etcd3, type IOptions, isRecoverableError } from 'etcd3';

/** the first and the longest wait between two reconnects, of gRPC and of a watch (ms) */
export const RECONNECT_INITIAL_MS = 100;
export const RECONNECT_MAX_MS = 500;
/** the largest answer taken from etcd (a read of the whole prefix) */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export interface EtcdClientOptions {
  endpoints: string[];
  /** per-call deadline for unary calls (ms) */
  callTimeoutMs?: number;
  /** retries of a unary call on a recoverable error (the CLI wants 0 to fail fast) */
  retries?: number;
}

export function createEtcdClient({ endpoints, callTimeoutMs = 3000, retries = 1 }: EtcdClientOptions): Etcd3 {
  return new Etcd3({
    hosts: endpoints,
    grpcOptions: {
      // etcd refuses pings more often than its --grpc-keepalive-min-time (5 s by default) with
      // GOAWAY "too_many_pings"; 6 s + 2 s timeout notices a dead peer within ~8 s
      'grpc.keepalive_time_ms': 6000,
      'grpc.keepalive_timeout_ms': 2000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': RECONNECT_INITIAL_MS,
      'grpc.max_reconnect_backoff_ms': RECONNECT_MAX_MS,
      // the whole prefix is read in one range (at start, after a compaction, by the CLI): gRPC's
      // default of 4 MiB stopped instances and the CLI at 20,000 tenants with 160-character names
      // (5.2 MB, an outside check), reported as "etcd unreachable". 256 MiB is about a million
      'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: RECONNECT_MAX_MS,
          breaker: new ConsecutiveBreaker(3),
        }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: retries }),
      // etcd3 calls `.next()` on this factory; its typings name the wrong cockatiel interface
      watchBackoff: new ExponentialBackoff({
        initialDelay: RECONNECT_INITIAL_MS,
        maxDelay: RECONNECT_MAX_MS,
      }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    },
  });
}
