/**
 * Retry delays of the consumer, as the seed formula `min(2^n s + jitter, 64 s)` with n the
 * number of attempts made so far (1 s, 2 s, 4 s, … 64 s). RabbitMQ delays by per-queue TTL +
 * dead-letter back to the work queue, one queue per delay; per-queue TTL cannot jitter, so the
 * ≤ 100 ms jitter of the seed formula is dropped (it only spread retries of one burst; a tier
 * queue releases them in arrival order anyway).
 */
export const RETRY_DELAYS_MS = [1000, 2000, 4000, 8000, 16_000, 32_000, 64_000] as const;

/** the delay before attempt `attemptsMade + 1` */
export function retryDelayMs(attemptsMade: number): number {
  const i = Math.max(0, Math.min(attemptsMade - 1, RETRY_DELAYS_MS.length - 1));
  return RETRY_DELAYS_MS[i]!;
}

/** the routing key of a tier on `shardgate.mail.retry`: what a rerouted mail is published with */
export function retryRoutingKey(delayMs: number): string {
  return `shardgate.mail.retry.${delayMs / 1000}s`;
}

/**
 * The tier's queue, bound to the exchange with `retryRoutingKey`. Named `delay`, not `retry`:
 * the queues named like the routing keys were declared by versions before at-least-once
 * dead-lettering (amqp-topology.ts), and a queue's arguments cannot change.
 */
export function retryQueueName(delayMs: number): string {
  return `shardgate.mail.delay.${delayMs / 1000}s`;
}

/** every retry tier's queue, shortest delay first */
export const RETRY_QUEUES: readonly string[] = RETRY_DELAYS_MS.map(retryQueueName);

/**
 * The retry queues of older versions, named like the routing keys: a worker retires each at
 * connect (amqp-topology.ts), unbound at once and deleted once its messages went back to the
 * work queue. Until then they hold mails, so `mail status` shows those that still exist.
 */
export const LEGACY_RETRY_QUEUES: readonly string[] = RETRY_DELAYS_MS.map(retryRoutingKey);
