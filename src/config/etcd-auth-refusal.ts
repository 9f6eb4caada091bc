/**
 * etcd answered and refused a call for want of authentication or of a role's permission (its
 * auth is enabled): etcd is reachable, and waiting does not help until the process's credentials
 * or the etcd user's roles change. Before, such a refusal read as "etcd unreachable at …: etcdserver:
 * user name is empty" (the CLI exited 2 as for a dead etcd; an outside check). The line names the
 * variables to set; it never holds a password (etcd's messages carry none).
 *
 * etcd 3.4's refusals, as etcd3 1.1.2 hands them over (checked against a real etcd, test/etcd-auth.test.ts):
 * - no user sent: GRPCInvalidArgumentError "etcdserver: user name is empty" (a watch: cancelled
 *   with that reason);
 * - wrong user or password: EtcdAuthenticationFailedError "… authentication failed, invalid user
 *   ID or password" (at the token request, before the call itself);
 * - a token etcd no longer takes (expired, issued before etcd restarted, or before an auth change
 *   with `--auth-token=jwt`): "invalid auth token" / "revision of auth store is old". The client
 *   asks for a new one first (etcd-token-refresh.ts); only one that is refused again ends here;
 * - a key outside the user's roles: EtcdPermissionDeniedError "etcdserver: permission denied".
 */
import {
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCUnauthenticatedError,
} from 'etcd3';

const VARIABLES = 'SHARDGATE_ETCD_USERNAME and SHARDGATE_ETCD_PASSWORD';

/** a token etcd no longer takes: a new one may be asked for (etcd-token-refresh.ts) */
export const STALE_TOKEN = /\b(invalid auth token|revision of auth store is old)\b/;

/**
 * the one line naming an authentication or permission refusal, or undefined for any other error.
 * Only etcd's own refusals (`etcdserver: …`): gRPC gives the same error classes to an HTTP 401 or
 * 403 from whatever answers at the endpoint (a proxy, a gateway, a wrong port), which is not etcd
 * refusing (a review: such an endpoint read as "etcd refused: permission denied" without any
 * credentials set)
 */
export function etcdAuthRefusal(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (!/\betcdserver: /.test(message)) return undefined;
  if (
    error instanceof EtcdAuthenticationFailedError ||
    /\bauthentication failed, invalid user ID or password\b/.test(message)
  )
    return `etcd refused: authentication failed (no such user, or a wrong password): check ${VARIABLES}`;
  if (/\buser name is empty\b/.test(message))
    return `etcd refused: authentication required (etcd's auth is enabled and the call carried no user token): set, or check, ${VARIABLES}`;
  if (
    error instanceof EtcdInvalidAuthTokenError ||
    error instanceof GRPCUnauthenticatedError ||
    STALE_TOKEN.test(message)
  )
    return `etcd refused: authentication (the etcd user's token was not accepted; a new one is asked for): check ${VARIABLES} if this persists`;
  if (error instanceof EtcdPermissionDeniedError || /\betcdserver: permission denied\b/.test(message))
    return 'etcd refused: permission denied: the roles of the etcd user (SHARDGATE_ETCD_USERNAME) must grant read on the key prefix, and readwrite on the keys this process writes (docs/configuration.md, "etcd authentication")';
  return undefined;
}
