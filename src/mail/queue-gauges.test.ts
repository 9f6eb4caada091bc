import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { QUEUE_SCRAPE_MS, registerQueueGauges } from './queue-gauges.js';

describe('mail_queue_messages', () => {
  it('a scrape does not wait on a broker that does not answer: the series are absent after QUEUE_SCRAPE_MS, one read in flight', async () => {
    let reads = 0;
    let answer: ((n: number) => void) | undefined;
    const amqp = {
      run: async () => {
        reads++;
        const n = await new Promise<number>((resolve) => {
          answer = resolve;
        });
        return { work: n, retry: 0, dead: 0 };
      },
    } as unknown as AmqpConnection;
    const metrics = createPromMetrics();
    registerQueueGauges({ amqp, metrics });
    const started = performance.now();
    const { body } = await metrics.render();
    // generous: the bound is QUEUE_SCRAPE_MS; before, the breaker's call timeout (2 s)
    expect(performance.now() - started).toBeLessThan(QUEUE_SCRAPE_MS + 1000);
    expect(body).not.toMatch(/^shardgate_mail_queue_messages\{/m);
    // a second scrape waits for the same read instead of starting another
    const second = metrics.render();
    await new Promise((r) => setTimeout(r, 50));
    answer?.(7);
    expect((await second).body).toMatch(
      /^shardgate_mail_queue_messages\{queue="shardgate\.mail\.work"\} 7$/m,
    );
    expect(reads).toBe(1);
  });
});
