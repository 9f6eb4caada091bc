/**
 * What etcd3 1.1.2 does not do for a client with credentials (its `auth` option), and etcd's own
 * Go client does. etcd3 asks for a token once, keeps it, and asks again only when a unary call is
 * refused with "invalid auth token". Measured against etcd 3.4 (test/etcd-auth.test.ts):
 * - etcd with auth not (yet) enabled answers the token request "authentication is not enabled",
 *   and etcd3 failed every call with it: credentials set before `etcdctl auth enable` stopped
 *   the process. Here, as in etcd's Go client, the call goes on without a token; the token is
 *   asked for again at the next call, so a process follows `auth enable` without a restart.
 * - with `--auth-token=jwt` (etcd's advice for production) a token carries the auth revision it
 *   was issued at, and after any auth change (a role granted, a user added) etcd refuses it with
 *   "revision of auth store is old" — every call, until a restart. createEtcdClient retries such a
 *   call once after dropping the token (the returned `invalidate`), as one sent without a token
 *   just as auth was enabled ("user name is empty"); nothing of a refused call was applied, so a
 *   write is not made twice.
 * - a watch stream keeps the token it was opened with: a watch created on it after the token went
 *   stale (after an auth change, or a reconnect with an expired one), or on a stream opened with
 *   none while auth was off, was cancelled at once with
 *   that reason (its `create()` rejected), and every new watch on that stream again. Here such a
 *   cancel drops the token and reopens the stream instead (etcd3's own reconnect: each watch of
 *   it is created again, the new one too, and the others resume from their revision; they see
 *   'disconnected', then 'connected').
 *
 * These reach into etcd3's internals (its connection pool's Authenticator and the client's
 * WatchManager): should a release rename them, createEtcdClient throws at once rather than
 * running without.
 */
import { Metadata } from '@grpc/grpc-js';
import { type Etcd3, EtcdAuthenticationFailedError } from 'etcd3';
import { STALE_TOKEN } from './etcd-auth-refusal.js';

/**
 * a refusal that a new token may end, for a client with credentials: a stale one, or none at
 * all ("user name is empty": sent while etcd's auth was still off, on a stream opened then)
 */
export function isTokenToRenew(message: string): boolean {
  return STALE_TOKEN.test(message) || /\buser name is empty\b/.test(message);
}

const AUTH_NOT_ENABLED = /\bauthentication is not enabled\b/;
const AUTH_FAILED = /\bauthentication failed, invalid user ID or password\b/;
/** etcd answered a token request: auth not enabled, or a wrong user or password */
function isTokenAnswer(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return (
    error instanceof EtcdAuthenticationFailedError ||
    AUTH_FAILED.test(message) ||
    AUTH_NOT_ENABLED.test(message)
  );
}

/** how long a token request's "not enabled" or "authentication failed" is taken as etcd's answer */
export const TOKEN_RECHECK_MS = 10_000;
/** etcd3's WatchManager State.Connected */
const CONNECTED = 2;

interface Authenticator {
  getMetadata(): Promise<Metadata>;
  invalidateMetadata(): void;
  /** one host's token request (etcd3 asks the hosts in order, and reports the last one's error) */
  getCredentialsFromHost(...args: unknown[]): Promise<string>;
}

interface WatchManager {
  state: number;
  handleCreatedResponse(res: { canceled?: boolean; cancel_reason?: string }): void;
  handleError(error: Error): void;
}

/** Installs the behaviours above on `client` (made with `auth`); answers `invalidate`: drop the token. */
export function installTokenRefresh(client: Etcd3): () => void {
  const internals = client as unknown as {
    pool?: { authenticator?: Partial<Authenticator> };
    watchManager?: Partial<WatchManager>;
  };
  const authenticator = internals.pool?.authenticator;
  const manager = internals.watchManager;
  if (
    typeof authenticator?.getMetadata !== 'function' ||
    typeof authenticator.invalidateMetadata !== 'function' ||
    typeof authenticator.getCredentialsFromHost !== 'function' ||
    typeof manager?.handleCreatedResponse !== 'function' ||
    typeof manager.handleError !== 'function'
  )
    throw new Error(
      'etcd3 internals changed (pool.authenticator, watchManager): src/config/etcd-token-refresh.ts must be updated for etcd authentication',
    );
  const { getMetadata, invalidateMetadata, handleCreatedResponse, handleError } = {
    getMetadata: authenticator.getMetadata.bind(authenticator),
    invalidateMetadata: authenticator.invalidateMetadata.bind(authenticator),
    handleCreatedResponse: manager.handleCreatedResponse.bind(manager),
    handleError: manager.handleError.bind(manager),
  };

  // A failed token request leaves none cached (etcd3 resets it), and etcd3 makes a new gRPC
  // client for each request that it never closes (a review: ~12 KB kept per call, and a
  // password check on etcd each time). So etcd's answers that say "no token now" are kept for
  // TOKEN_RECHECK_MS: "not enabled" (calls go on without one), "authentication failed" (calls
  // fail so, without asking etcd). Taken from whichever host answered so: etcd3 reports only the
  // last host's error, and one endpoint down hid another's answer (a review). Any other failure
  // of the request (no host answered it) is the call's failure, as before: etcd unreachable.
  let notEnabledUntil = 0;
  let refused: { error: unknown; until: number } | undefined;
  /** etcd's answer about the token in the request going on (any host's), if one gave it */
  let answered: unknown;
  /** moved by `invalidate`: a request that was going on then keeps nothing it hears */
  let generation = 0;
  const invalidate = () => {
    notEnabledUntil = 0;
    refused = undefined;
    generation++;
    invalidateMetadata();
  };
  const getCredentialsFromHost = authenticator.getCredentialsFromHost.bind(authenticator);
  authenticator.getCredentialsFromHost = (...args: unknown[]) =>
    getCredentialsFromHost(...args).catch((error: unknown) => {
      if (isTokenAnswer(error)) answered = error;
      throw error;
    });
  authenticator.getMetadata = () => {
    const now = performance.now();
    if (now < notEnabledUntil) return Promise.resolve(new Metadata());
    if (refused && now < refused.until) return Promise.reject(refused.error);
    const asked = generation;
    answered = undefined;
    return getMetadata().catch((error: unknown) => {
      const answer = answered ?? error;
      const message = answer instanceof Error ? answer.message : String(answer);
      const current = asked === generation;
      if (AUTH_NOT_ENABLED.test(message)) {
        if (current) notEnabledUntil = performance.now() + TOKEN_RECHECK_MS;
        return new Metadata();
      }
      if (isTokenAnswer(answer)) {
        if (current) refused = { error: answer, until: performance.now() + TOKEN_RECHECK_MS };
        throw answer;
      }
      throw error;
    });
  };

  manager.handleCreatedResponse = (res) => {
    if (res.canceled && isTokenToRenew(res.cancel_reason ?? '') && manager.state === CONNECTED) {
      invalidate();
      handleError(
        new Error(
          `etcd refused the watch stream's token (${res.cancel_reason}): reopening it with a new one`,
        ),
      );
      return;
    }
    handleCreatedResponse(res);
  };
  return invalidate;
}
