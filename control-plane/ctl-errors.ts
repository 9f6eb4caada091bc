/**
 * The CLI's exit-code contract (CONTRACT.md §5): 0 success, 1 a user error (one line naming the
 * key or argument), 2 etcd unreachable.
 */
export class UserError extends Error {
  readonly exitCode = 1;
}

export class EtcdUnreachableError extends Error {
  readonly exitCode = 2;
}
