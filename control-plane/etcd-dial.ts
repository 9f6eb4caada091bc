/**
 * The dial `shardgate-ctl` makes before its first etcd call (ctl-context.ts says why): every
 * endpoint at once over HTTP/2, up to DIAL_TIMEOUT_MS; and the wording of an etcd failure for
 * the one line an operator reads.
 */
import { type ClientHttp2Session, connect } from 'node:http2';
import { GRPCDeadlineExceededError } from 'etcd3';
import { etcdAuthRefusal } from '../src/config/etcd-auth-refusal.js';
import { errnoReason } from './errno-reason.js';

/** how long the first call waits for an endpoint to answer at all (etcdctl's --dial-timeout default) */
export const DIAL_TIMEOUT_MS = 2000;

/**
 * Dial every endpoint at once over HTTP/2 (TLS for https://). Resolves undefined as soon as one
 * sends its SETTINGS frame (a live server speaking HTTP/2, as etcd's gRPC port does), else, once
 * every one failed or `timeoutMs` passed, why not: one reason, or `<endpoint> <reason>` for each
 * when they differ. Every connection it opened is closed before it resolves.
 */
export async function dialEtcd(
  endpoints: string[],
  timeoutMs = DIAL_TIMEOUT_MS,
): Promise<string | undefined> {
  const dials = endpoints.map((endpoint) => dialOne(endpoint, timeoutMs));
  try {
    await Promise.any(dials.map((d) => d.answered));
    return undefined;
  } catch (error) {
    const reasons = (error as AggregateError).errors.map((e: Error) => e.message);
    if (new Set(reasons).size === 1) return reasons[0]!;
    return reasons.map((reason, i) => `${endpoints[i]} ${reason}`).join('; ');
  } finally {
    for (const d of dials) d.cancel();
  }
}

function dialOne(endpoint: string, timeoutMs: number): { answered: Promise<void>; cancel: () => void } {
  let session: ClientHttp2Session | undefined;
  let timer: NodeJS.Timeout | undefined;
  const answered = new Promise<void>((resolve, reject) => {
    const fail = (reason: string) => reject(new Error(reason));
    timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    try {
      session = connect(endpoint);
    } catch (error) {
      fail(etcdFailureReason(error, timeoutMs));
      return;
    }
    session.once('remoteSettings', () => resolve());
    // `on`, not `once`: a second error after the first must not become an uncaught one
    session.on('error', (error) => fail(etcdFailureReason(error, timeoutMs)));
    session.once('close', () => fail('connection closed before an answer'));
  });
  return {
    answered,
    cancel: () => {
      clearTimeout(timer);
      session?.destroy();
    },
  };
}

/**
 * The cause of a failed etcd call or dial in operator words: a deadline is `no answer within
 * <timeoutMs> ms`, a socket error its errno in words (errno-reason.ts; found also inside gRPC's
 * "No connection established. Last error: …"), anything else its first line without gRPC's
 * status prefix (`14 UNAVAILABLE: `) and diagnostics.
 */
export function etcdFailureReason(error: unknown, timeoutMs: number): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof GRPCDeadlineExceededError || /\bDEADLINE_EXCEEDED\b/.test(message)) {
    return `no answer within ${timeoutMs} ms`;
  }
  const errno = errnoReason(error);
  if (errno) return errno;
  const reason = message
    .split('\n')[0]!
    .replace(/\s*Resolution note:.*$/, '')
    .replace(/^\d+ [A-Z_]+: /, '')
    .replace(/^No connection established\. Last error: (Error: )?/, '')
    .replace(
      /,\s*(name resolution|metadata filters|time to current attempt start|Waiting for LB pick).*$/,
      '',
    )
    .trim();
  return reason || 'connection failed';
}

/**
 * etcd answered and refused the request itself (it is reachable): a one-line user error, or
 * undefined for a failure to reach it. A request over etcd's `--max-request-bytes` (a
 * `config apply` of thousands of long values) was reported as "etcd unreachable", exit 2, and so
 * was a refusal of the etcd credentials ("etcdserver: user name is empty" with etcd's auth
 * enabled): that one names the variables to set (etcd-auth-refusal.ts). etcd checks a request's
 * permission before applying any of it: a refused write wrote nothing.
 */
export function etcdRefusal(error: unknown): string | undefined {
  const refused = etcdAuthRefusal(error);
  if (refused) return refused;
  const message = error instanceof Error ? error.message : String(error);
  if (/request is too large/.test(message))
    return 'etcd refused the request as larger than its --max-request-bytes (1.5 MiB unless set); nothing was written: write it in parts (config apply: split the file)';
  return undefined;
}
