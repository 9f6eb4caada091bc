/**
 * A socket error in the words an operator recognises, by its errno code: the reason of the one
 * line `shardgate-ctl` prints when etcd (etcd-dial.ts) or RabbitMQ (mail-queues.ts) cannot be
 * reached, e.g. `connection refused` for Node's `connect ECONNREFUSED 127.0.0.1:2379`.
 */

/** socket errors an operator recognises, by errno code */
const ERRNO_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'unknown host',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connect timed out',
};

/**
 * The reasons of a failure to connect at all: a request failing so never left (every one but
 * `connection reset`, which can cut a request already sent). CtlContext.call tells an unanswered
 * write that may be in force from one that is not by it.
 */
export const NOT_CONNECTED_REASONS: ReadonlySet<string> = new Set(
  Object.entries(ERRNO_REASONS)
    .filter(([code]) => code !== 'ECONNRESET')
    .map(([, reason]) => reason),
);

/**
 * The words for the error's errno: its `code`, else the first known code in its message (gRPC
 * words one as "No connection established. Last error: … ECONNREFUSED …"); undefined when it
 * names none.
 */
export function errnoReason(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const errno = [code, ...(message.match(/\bE[A-Z_]{3,}\b/g) ?? [])].find((c) => c && c in ERRNO_REASONS);
  return errno ? ERRNO_REASONS[errno] : undefined;
}
