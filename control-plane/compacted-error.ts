/**
 * Whether an etcd read failed because it named a revision etcd has compacted away: an answer, not
 * an unreachable etcd, so the caller decides what history it can do without. etcd3 has no error
 * class for it (a GRPCOutOfRangeError at best, which other failures share): the server's message
 * is matched. Any other error, or a value that is no error, is false.
 */

/** what etcd says (in a gRPC error's message) when a read names a revision it compacted away */
const COMPACTED = 'required revision has been compacted';

export function isCompactedError(error: unknown): boolean {
  return error instanceof Error && error.message.includes(COMPACTED);
}
