/**
 * RabbitMQ refuses `connection.open` with a `connection.close` (530 NOT_ALLOWED) in place of
 * `connection.open-ok` when the vhost does not exist, the user has no access to it, the vhost's
 * `max-connections` limit or the user's (`set_user_limits`) is reached, or the vhost is down.
 * amqplib 0.10 drops the broker's reply text and words them all alike, `Expected
 * ConnectionOpenOk; got <ConnectionClose channel:0>`, so the cause cannot be told apart here: the
 * line names them and where the broker says which.
 */
const VHOST_REFUSAL = /Expected ConnectionOpenOk; got <ConnectionClose/;

export const VHOST_REFUSAL_REASONS =
  "no such vhost, the user has no access to it, the vhost's or the user's connection limit (max-connections) is reached, or the vhost is down; the broker log names which";

/** whether `error` is amqplib's wording of a refused vhost open */
export function isVhostRefusal(error: unknown): boolean {
  return VHOST_REFUSAL.test(error instanceof Error ? error.message : String(error));
}
