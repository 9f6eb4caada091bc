/**
 * One way to build an etcd3 client for the API, the worker and the CLI: gRPC keepalives so a dead
 * peer is noticed within seconds, a per-call deadline, and a watch backoff capped at 2 s so a watch
 * resumes quickly after etcd comes back (the library default waits up to 30 s).
 *
 * There is no dial timeout: etcd3 1.1.2 reads its `dialTimeout` option nowhere (microsoft/etcd3#137).
 * A unary call to an etcd that takes TCP connections but never answers (SIGSTOPped) waits in gRPC's
 * connect phase until its deadline; the CLI dials first with a budget of its own
 * (control-plane/ctl-context.ts).
 */
import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { Etcd3, type IOptions, isRecoverableError } from 'etcd3';

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
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2000,
    },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      global: retry(handleWhen(isRecoverableError), { maxAttempts: retries }),
      // etcd3 calls `.next()` on this factory; its typings name the wrong cockatiel interface
      watchBackoff: new ExponentialBackoff({ initialDelay: 200, maxDelay: 2000 }) as unknown as NonNullable<
        IOptions['faultHandling']
      >['watchBackoff'],
    },
  });
}
