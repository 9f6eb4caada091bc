/**
 * The CLI's exit-code contract (CONTRACT.md §5): 0 success, 1 a user error (one line naming the
 * key or argument), 2 a dependency it needs is unreachable (etcd; RabbitMQ for `mail …`).
 */
export class UserError extends Error {
  readonly exitCode = 1;
}

/**
 * a guarded write found the config prefix changed since its read (someone else wrote a key in
 * between): nothing was written. Commands that compute their write from a fresh read retry it.
 */
export class ConcurrentChangeError extends UserError {}

/** a server the command needs did not answer: one line on stderr, exit 2 */
export class UnreachableError extends Error {
  readonly exitCode = 2;
}

export class EtcdUnreachableError extends UnreachableError {}
