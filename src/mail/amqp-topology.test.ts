import { describe, expect, it } from 'vitest';
import { MAIL_EXCHANGE, MAIL_ROUTING_KEY, retryQueueArguments } from './amqp-topology.js';

describe('mail topology', () => {
  it('gives a retry tier its delay and dead-letters it back to the work queue at least once', () => {
    expect(retryQueueArguments(4000)).toEqual({
      'x-queue-type': 'quorum',
      'x-message-ttl': 4000,
      'x-dead-letter-exchange': MAIL_EXCHANGE,
      'x-dead-letter-routing-key': MAIL_ROUTING_KEY,
      // without reject-publish overflow, RabbitMQ falls back to at-most-once
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
  });
});
