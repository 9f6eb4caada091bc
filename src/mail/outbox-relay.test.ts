import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../observability/logger.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import type { AmqpConnection } from './amqp-connection.js';
import { OutboxRelay } from './outbox-relay.js';
import type { OutboxStore } from './outbox-store.js';

describe('OutboxRelay failures', () => {
  afterEach(() => vi.useRealTimers());

  /** a relay of one shard whose outbox probe is `hasDue`, started, and the lines it logs */
  function failingRelay(shard: string, hasDue: () => Promise<boolean>) {
    const lines: { fields: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      error: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }),
      info: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }),
    } as unknown as Logger;
    const store = { shardIds: () => [shard], backlog: async () => 0, hasDue } as unknown as OutboxStore;
    const relay = new OutboxRelay({
      store,
      amqp: { blockedForMs: () => 0 } as unknown as AmqpConnection,
      logger,
      metrics: createPromMetrics(),
      idleMs: 100,
    });
    relay.start();
    return { relay, lines };
  }

  it('logs a failure that repeats every second (a shard without the outbox table) at once, then once a minute, and at once again after a success', async () => {
    vi.useFakeTimers();
    let failure = "ER_NO_SUCH_TABLE: Table 'shardgate.outbox' doesn't exist";
    let failing = true;
    let polls = 0;
    const { relay, lines } = failingRelay('s3', async () => {
      polls++;
      if (failing) throw new DependencyUnavailableError('mysql-master:s3', failure, { answered: true });
      return false;
    });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(polls).toBeGreaterThanOrEqual(25); // retried about every second
    // before: one line per retry
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'relay failed', fields: { shard: 's3', repeatsSinceLast: 0 } });
    await vi.advanceTimersByTimeAsync(31_000);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.fields.repeatsSinceLast).toBeGreaterThanOrEqual(50);
    // another kind of failure is logged at once, not folded into the first one's count
    failure = 'ER_LOCK_DEADLOCK: Deadlock found';
    await vi.advanceTimersByTimeAsync(1_500);
    expect(lines).toHaveLength(3);
    expect(lines[2]!.fields).toMatchObject({
      repeatsSinceLast: 0,
      err: expect.stringContaining('ER_LOCK_DEADLOCK'),
    });
    failing = false;
    await vi.advanceTimersByTimeAsync(2_000);
    // the end of the failures says how many went unlogged
    expect(lines).toHaveLength(4);
    expect(lines[3]).toMatchObject({ msg: 'relay failures ended', fields: { shard: 's3' } });
    expect(lines[3]!.fields.unlogged).toBeGreaterThan(0);
    failing = true;
    await vi.advanceTimersByTimeAsync(1_500);
    expect(lines).toHaveLength(5);
    expect(lines[4]!.fields.repeatsSinceLast).toBe(0);
    const stopped = relay.stop();
    await vi.advanceTimersByTimeAsync(2_000);
    await stopped;
  });

  it('bounds the lines of failures whose text differs each time, and counts every unlogged one', async () => {
    vi.useFakeTimers();
    let failing = true;
    let failures = 0;
    const { relay, lines } = failingRelay('s4', async () => {
      if (!failing) return false;
      failures++;
      throw new DependencyUnavailableError('mysql-master:s4', `odd failure number ${failures}`, {
        answered: true,
      });
    });
    await vi.advanceTimersByTimeAsync(45_000);
    expect(failures).toBeGreaterThanOrEqual(40);
    // 20 kinds each on its own, then one line for all further kinds (not one line per failure)
    expect(lines).toHaveLength(21);
    expect(lines[20]!.fields).toMatchObject({ moreKinds: true, repeatsSinceLast: 0 });
    failing = false;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(lines).toHaveLength(22);
    expect(lines[21]).toMatchObject({ msg: 'relay failures ended', fields: { shard: 's4' } });
    expect(lines[21]!.fields.unlogged).toBe(failures - 21);
    const stopped = relay.stop();
    await vi.advanceTimersByTimeAsync(2_000);
    await stopped;
  });
});

describe('OutboxRelay claims whose COMMIT fails', () => {
  afterEach(() => vi.useRealTimers());

  it('marks rows it published before a failed COMMIT without publishing them again', async () => {
    vi.useFakeTimers();
    const rows = ['r1', 'r2'].map((id) => ({
      id,
      tenantId: 't',
      kind: 'welcome',
      recipient: `${id}@x.org`,
      payload: {},
    }));
    let sentAt = false; // the rows' sent_at as committed
    let commitFails = 3; // a full binlog disk: the next three COMMITs fail
    const published: string[] = [];
    const store = {
      shardIds: () => ['s1'],
      backlog: async () => 0,
      hasDue: async () => !sentAt,
      claim: async (_shard: string, _limit: number, publish: (r: typeof rows) => Promise<void>) => {
        if (sentAt) return 0;
        await publish(rows);
        if (commitFails-- > 0)
          throw Object.assign(new Error('Disk full'), {
            errno: 1021,
            code: 'ER_DISK_FULL',
            sqlState: 'HY000',
          });
        sentAt = true;
        return rows.length;
      },
    } as unknown as OutboxStore;
    const channel = {
      on() {},
      off() {},
      publish: (_ex: string, _key: string, content: Buffer) => {
        published.push(...JSON.parse(content.toString()).mails.map((m: { outboxId: string }) => m.outboxId));
        return true;
      },
      waitForConfirms: async () => {},
    };
    const relay = new OutboxRelay({
      store,
      amqp: {
        blockedForMs: () => 0,
        run: (fn: (ch: unknown) => Promise<void>) => fn(channel),
      } as unknown as AmqpConnection,
      logger: { error() {}, info() {} } as unknown as Logger,
      metrics: createPromMetrics(),
      idleMs: 100,
    });
    relay.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sentAt).toBe(true);
    expect(commitFails).toBe(-1); // the COMMIT was tried four times…
    expect(published).toEqual(['r1', 'r2']); // …and the rows published once (before: four times)
    const stopped = relay.stop();
    await vi.advanceTimersByTimeAsync(2_000);
    await stopped;
  });

  it('publishes such rows again once they were remembered for a minute without a failed claim', async () => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance'],
    });
    const rows = [{ id: 'r1', tenantId: 't', kind: 'welcome', recipient: 'r1@x.org', payload: {} }];
    let due = true;
    let commitFails = true;
    const published: string[] = [];
    const store = {
      shardIds: () => ['s1'],
      backlog: async () => 0,
      hasDue: async () => due,
      claim: async (_shard: string, _limit: number, publish: (r: typeof rows) => Promise<void>) => {
        if (!due) return 0;
        await publish(rows);
        if (commitFails) {
          commitFails = false;
          due = false; // it did apply (its answer lost): nothing to claim…
          throw new Error('Connection lost: the server closed the connection.');
        }
        due = false;
        return 1;
      },
    } as unknown as OutboxStore;
    const channel = {
      on() {},
      off() {},
      publish: (_ex: string, _key: string, content: Buffer) => {
        published.push(JSON.parse(content.toString()).outboxId);
        return true;
      },
      waitForConfirms: async () => {},
    };
    const relay = new OutboxRelay({
      store,
      amqp: {
        blockedForMs: () => 0,
        run: (fn: (ch: unknown) => Promise<void>) => fn(channel),
      } as unknown as AmqpConnection,
      logger: { error() {}, info() {} } as unknown as Logger,
      metrics: createPromMetrics(),
      idleMs: 100,
    });
    relay.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(published).toEqual(['r1']);
    // …until the lost-mail sweep puts it back (the broker lost the message) minutes later
    await vi.advanceTimersByTimeAsync(120_000);
    due = true;
    await vi.advanceTimersByTimeAsync(2_000);
    expect(published).toEqual(['r1', 'r1']);
    const stopped = relay.stop();
    await vi.advanceTimersByTimeAsync(2_000);
    await stopped;
  });
});
