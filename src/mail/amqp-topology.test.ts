import type { ChannelModel } from 'amqplib';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { recordingLogger } from '../testing/recording-logger.js';
import {
  declareMailTopology,
  LEGACY_RECHECK_MS,
  legacyRetirement,
  MAIL_EXCHANGE,
  MAIL_ROUTING_KEY,
  retryQueueArguments,
} from './amqp-topology.js';
import { LEGACY_RETRY_QUEUES } from './retry-tiers.js';

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

  describe('the legacy retry queues', () => {
    beforeEach(() => {
      legacyRetirement.allGoneAt = Number.NEGATIVE_INFINITY;
      vi.useRealTimers();
    });

    /** a broker where `present` legacy queues exist (empty); every passive check is recorded */
    function broker(present: Set<string>) {
      const checked: string[] = [];
      const channel = {
        on: () => {},
        close: async () => {},
        assertExchange: async () => ({}),
        assertQueue: async () => ({}),
        bindQueue: async () => ({}),
        unbindQueue: async () => ({}),
        deleteQueue: async (q: string) => {
          present.delete(q);
          return { messageCount: 0 };
        },
        checkQueue: async (q: string) => {
          checked.push(q);
          if (!present.has(q)) throw Object.assign(new Error('NOT_FOUND'), { code: 404 });
          return { queue: q, messageCount: 0, consumerCount: 0 };
        },
      };
      const model = { createChannel: async () => channel } as unknown as ChannelModel;
      return { model, checked };
    }

    it('once all were found gone, the connects of the next 10 minutes do not look (each look at a missing one is an error in the broker log); a later one does', async () => {
      vi.useFakeTimers({ toFake: ['Date', 'performance'] });
      const { logger } = recordingLogger();
      const present = new Set<string>();
      const { model, checked } = broker(present);
      await declareMailTopology(model, logger);
      expect(checked).toEqual(LEGACY_RETRY_QUEUES);
      vi.advanceTimersByTime(LEGACY_RECHECK_MS - 1000);
      await declareMailTopology(model, logger);
      expect(checked).toHaveLength(LEGACY_RETRY_QUEUES.length);
      // an older worker still running declared its queue again: a connect after 10 minutes deletes it
      present.add(LEGACY_RETRY_QUEUES[0]!);
      vi.advanceTimersByTime(2000);
      await declareMailTopology(model, logger);
      expect(checked).toHaveLength(2 * LEGACY_RETRY_QUEUES.length + 1);
      expect(present.size).toBe(0);
    });

    it('looks again at the next connect while one existed', async () => {
      const { logger } = recordingLogger();
      const { model, checked } = broker(new Set([LEGACY_RETRY_QUEUES[2]!]));
      await declareMailTopology(model, logger);
      // found and deleted (empty): the next connect makes sure, then stops looking
      await declareMailTopology(model, logger);
      await declareMailTopology(model, logger);
      expect(checked.length).toBeGreaterThan(LEGACY_RETRY_QUEUES.length);
      expect(checked).toHaveLength(2 * LEGACY_RETRY_QUEUES.length + 1);
    });
  });
});
