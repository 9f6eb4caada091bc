/**
 * RabbitMQ refuses to open a vhost with a `connection.close` (530 NOT_ALLOWED) in place of
 * `connection.open-ok`, for three reasons: the vhost does not exist, the user has no access to
 * it, or its `max-connections` limit is reached. amqplib 0.10 drops the broker's reply text and
 * words all three alike, `Expected ConnectionOpenOk; got <ConnectionClose channel:0>`, so the
 * cause cannot be told apart here: the line names all three and where the broker says which.
 */
const VHOST_REFUSAL = /Expected ConnectionOpenOk; got <ConnectionClose/;

export const VHOST_REFUSAL_REASONS =
  'no such vhost, the user has no access to it, or its connection limit (max-connections) is reached; the broker log names which';

/** whether `error` is amqplib's wording of a refused vhost open */
export function isVhostRefusal(error: unknown): boolean {
  return VHOST_REFUSAL.test(error instanceof Error ? error.message : String(error));
}
