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
 * With several endpoints etcd3 picks one at random for each call (a shuffle per call) and, with
 * `retries` 0, failed any call that met a dead one: the CLI, given one live and one refusing
 * endpoint, exited 2 "connection refused" on about half its runs (an outside check; its writes
 * 11 of 12). A call that found no connection to start on (isConnectFailure) now goes on to the
 * next endpoint of that call's shuffle, whatever `retries` says: nothing of it was sent, so even
 * a guarded transaction cannot be applied twice. Only `retries` repeats a call that may have
 * reached etcd (a deadline, a dropped connection). Watches and lease keepalives do not take this
 * path: etcd3 reconnects their streams to a random endpoint every RECONNECT_MAX_MS at most until
 * one holds.
 *
 * There is no dial timeout: etcd3 1.1.2 reads its `dialTimeout` option nowhere (microsoft/etcd3#137).
 * A unary call to an etcd that takes TCP connections but never answers (SIGSTOPped) waits in gRPC's
 * connect phase until its deadline; the CLI dials first with a budget of its own
 * (control-plane/ctl-context.ts).
 *
 * `auth` (SHARDGATE_ETCD_USERNAME / _PASSWORD, env.ts etcdCredentials): etcd3 exchanges them for
 * a token before the first call and sends it with every call and stream; etcd3's gaps there
 * (etcd with auth off, a JWT token stale after an auth change, a watch stream's stale token) are
 * filled by etcd-token-refresh.ts. A refusal of the credentials or of a role's permission is
 * named by etcd-auth-refusal.ts. Without `auth` every call goes without a token.
 */
import { ConsecutiveBreaker, circuitBreaker, ExponentialBackoff, handleWhen, retry, wrap } from 'cockatiel';
import { Etcd3, GRPCUnavailableError, type IOptions, isRecoverableError } from 'etcd3';
import { installTokenRefresh, isTokenToRenew } from './etcd-token-refresh.js';

/** the first and the longest wait between two reconnects, of gRPC and of a watch (ms) */
export const RECONNECT_INITIAL_MS = 100;
export const RECONNECT_MAX_MS = 500;
/** the largest answer taken from etcd (a read of the whole prefix) */
export const MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

export interface EtcdClientOptions {
  endpoints: string[];
  /** per-call deadline for unary calls (ms) */
  callTimeoutMs?: number;
  /**
   * retries of a unary call on a recoverable error (the CLI wants 0 to fail fast); a connect
   * failure on one endpoint moving on to the next is not one (isConnectFailure)
   */
  retries?: number;
  /** the etcd user to authenticate as (etcd's auth enabled); absent: calls carry no token */
  auth?: { username: string; password: string };
}

/**
 * A unary call that never started: gRPC's picker failed it with UNAVAILABLE "No connection
 * established. Last error: connect ECONNREFUSED …" (nothing listens, host unreachable) before
 * any stream existed, so not a byte of it reached etcd and it may be made again elsewhere, a
 * write as well. A call that had started and then lost its connection fails otherwise
 * ("Connection dropped", a reset, a deadline) and is not one.
 */
export function isConnectFailure(error: unknown): boolean {
  return error instanceof GRPCUnavailableError && /\bNo connection established\b/.test(error.message);
}

export function createEtcdClient({
  endpoints,
  callTimeoutMs = 3000,
  retries = 1,
  auth,
}: EtcdClientOptions): Etcd3 {
  // a call refused for a stale token (or none) is made once more with a new one (etcd-token-refresh.ts):
  // etcd refused it before applying anything. The token is dropped before that attempt
  let dropToken = () => {};
  const staleToken = retry(
    handleWhen((error) => isTokenToRenew(error.message)),
    { maxAttempts: auth ? 1 : 0 },
  );
  staleToken.onRetry(() => dropToken());
  const client = new Etcd3({
    hosts: endpoints,
    ...(auth ? { auth: { username: auth.username, password: auth.password } } : {}),
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
    // a wall-clock deadline is what gRPC takes; grpc-js turns it into a timeout as the call starts
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    faultHandling: {
      host: () =>
        circuitBreaker(handleWhen(isRecoverableError), {
          halfOpenAfter: RECONNECT_MAX_MS,
          breaker: new ConsecutiveBreaker(3),
        }),
      // outermost the one retry of a stale token (with `auth` only), then `retries`; within each of those 1 + `retries` tries, a connect failure moves on
      // to the next endpoint, endpoints.length attempts at most (etcd3 shares one shuffle across a
      // call's attempts: with `retries` 0 and no host breaker open, each endpoint once). Each
      // attempt has a deadline of its own (defaultCallOptions is asked again)
      global: wrap(
        staleToken,
        retry(handleWhen(isRecoverableError), { maxAttempts: retries }),
        retry(handleWhen(isConnectFailure), { maxAttempts: endpoints.length - 1 }),
      ),
      // etcd3 calls `.next()` on this factory; its typings name the wrong cockatiel interface
      watchBackoff: new ExponentialBackoff({
        initialDelay: RECONNECT_INITIAL_MS,
        maxDelay: RECONNECT_MAX_MS,
      }) as unknown as NonNullable<IOptions['faultHandling']>['watchBackoff'],
    },
  });
  if (auth) dropToken = installTokenRefresh(client);
  return client;
}
