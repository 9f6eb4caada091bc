import type { ConsumeMessage, Options } from 'amqplib';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { DependencyError } from '../resilience/errors.js';
import { DEAD_EXCHANGE, RETRY_EXCHANGE } from './amqp-topology.js';
import {
  type BatchStore,
  countsAsAttempt,
  DeliveryBatcher,
  type MailChannel,
  MailSentUnrecordedError,
  SENT_AT_HEADER,
} from './delivery-batcher.js';
import { decodeMailMessage, encodeMailMessage, encodeMails } from './mail-message.js';
import { type BatchDelivery, DeliveryUnrecordedError, type HoldMails } from './outbox-store.js';
import type { HeldMail, MailSender, OutgoingMail } from './smtp-sender.js';
import { splitMailMessage } from './split-mail-message.js';

/** what the fake channel saw: acks by delivery tag, publishes with their routing */
class FakeChannel implements MailChannel {
  acked: number[] = [];
  /** nacked with requeue, by delivery tag */
  requeued: number[] = [];
  /** gone: ack and nack throw, as amqplib's do on a closed channel */
  closed = false;
  published: { exchange: string; routingKey: string; headers: Record<string, unknown> }[] = [];
  contents: Buffer[] = [];
  confirms: () => Promise<void> = async () => {};
  ack(message: ConsumeMessage): void {
    if (this.closed) throw new Error('Channel closed');
    this.acked.push(message.fields.deliveryTag);
  }
  nack(message: ConsumeMessage, allUpTo?: boolean, requeue?: boolean): void {
    if (this.closed) throw new Error('Channel closed');
    if (allUpTo === false && requeue === true) this.requeued.push(message.fields.deliveryTag);
    else throw new Error('only a nack of one message with requeue is expected');
  }
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean {
    this.published.push({ exchange, routingKey, headers: options?.headers ?? {} });
    this.contents.push(content);
    return true;
  }
  waitForConfirms(): Promise<void> {
    return this.confirms();
  }
  /** listeners of `return` (a mandatory publish no queue took) */
  returns = new Set<(message: ConsumeMessage) => void>();
  on(_event: 'return', listener: (message: ConsumeMessage) => void): void {
    this.returns.add(listener);
  }
  off(_event: 'return', listener: (message: ConsumeMessage) => void): void {
    this.returns.delete(listener);
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  isOpen(): boolean {
    return !this.closed;
  }
}

/**
 * The outbox of a fake shard: ids in `delivered` have `delivered_at`, ids in `lockedElsewhere`
 * are held by another transaction, ids in neither and not in `rows` have no row. Follows the
 * contract of OutboxStore.deliverBatch: hold, mark, write the dots, commit, then the answers;
 * a refused mail's mark is cleared; a failure before the dots cancels the held mails; a COMMIT
 * failing after the dots rejects with DeliveryUnrecordedError naming the mails accepted; ids
 * `sentBefore` are marked without being held (`recorded`).
 */
class FakeStore implements BatchStore {
  rows = new Set<string>();
  delivered = new Set<string>();
  lockedElsewhere = new Set<string>();
  calls: { shardId: string; ids: string[] }[] = [];
  /** the `sentBefore` of each call, in order */
  sentBeforeCalls: string[][] = [];
  /** runs after `hold`, before the dots (the UPDATE); throw to fail the transaction there */
  beforeDots: () => Promise<void> = async () => {};
  /** runs after the dots were written; throw to fail the COMMIT */
  beforeCommit: () => Promise<void> = async () => {};
  /** runs before anything; throw to fail the transaction at BEGIN */
  onBegin: () => Promise<void> = async () => {};
  /** ids whose row carries `dead_lettered_at` */
  deadMarks = new Set<string>();
  /** every markDeadLettered call, and the contents of the dead-letter publishes at that moment */
  markCalls: { shardId: string; ids: string[] }[] = [];
  /** throw to fail the mark (the master down) */
  onMark: () => Promise<void> = async () => {};

  async markDeadLettered(shardId: string, outboxIds: readonly string[]): Promise<void> {
    this.markCalls.push({ shardId, ids: [...outboxIds] });
    await this.onMark();
    for (const id of outboxIds) this.deadMarks.add(id);
  }

  async clearDeadLettered(_shardId: string, outboxIds: readonly string[]): Promise<void> {
    for (const id of outboxIds) this.deadMarks.delete(id);
  }

  async deliverBatch(
    shardId: string,
    outboxIds: readonly string[],
    hold: HoldMails,
    sentBefore: ReadonlySet<string> = new Set(),
    onCommitted: () => void = () => {},
  ): Promise<BatchDelivery> {
    const ids = [...new Set(outboxIds)];
    this.calls.push({ shardId, ids });
    this.sentBeforeCalls.push([...sentBefore].sort());
    await this.onBegin();
    const duplicate = ids.filter((id) => this.delivered.has(id) && !this.lockedElsewhere.has(id));
    const locked = ids.filter((id) => this.lockedElsewhere.has(id));
    const open = ids.filter((id) => !duplicate.includes(id) && !locked.includes(id));
    const recorded = open.filter((id) => sentBefore.has(id));
    const missing = open.filter((id) => !this.rows.has(id) && !sentBefore.has(id));
    const toSend = open.filter((id) => !sentBefore.has(id));
    const held = toSend.length > 0 ? await hold(toSend) : new Map<string, HeldMail>();
    try {
      await this.beforeDots();
    } catch (error) {
      for (const h of held.values()) h.cancel();
      throw error;
    }
    const released = [...held].map(([id, h]) => [id, h.release()] as const);
    await Promise.allSettled(released.map(([, r]) => r.written));
    try {
      await this.beforeCommit();
    } catch (error) {
      const answers = await Promise.allSettled(released.map(([, r]) => r.accepted));
      const refused = new Map<string, unknown>();
      answers.forEach((a, i) => {
        if (a.status === 'rejected') refused.set(released[i]![0], a.reason);
      });
      throw new DeliveryUnrecordedError(
        released.filter((_, i) => answers[i]?.status === 'fulfilled').map(([id]) => id),
        error,
        refused,
      );
    }
    const marked = [...held.keys(), ...recorded].filter((id) => this.rows.has(id));
    for (const id of marked) this.delivered.add(id);
    onCommitted();
    const sent: string[] = [];
    const refused = new Map<string, unknown>();
    for (const [id, r] of released) {
      try {
        await r.accepted;
        sent.push(id);
      } catch (error) {
        refused.set(id, error);
        this.delivered.delete(id);
      }
    }
    return { duplicate, locked, sent, missing, refused, recorded };
  }
}

/** the server's reply refusing one mail, as SmtpSender reports it (nodemailer's responseCode) */
function smtpReply(code: number, text: string): DependencyError {
  const cause = Object.assign(new Error(`${code} ${text}`), { responseCode: code });
  return new DependencyError('smtp', `smtp: ${code} ${text}`, { cause });
}

/** no reply at all: the server is unreachable, frozen or closed the connection */
function smtpOutage(text: string): DependencyError {
  return new DependencyError('smtp', `smtp: ${text}`, { cause: new Error(text) });
}

/** an SMTP server seen from the sender: `sent` got their final dot and were accepted */
class FakeSender implements MailSender {
  maxSessions = 16;
  /** every mail fails without a reply (an outage) */
  down = false;
  /** every mail gets this transient reply (4xx) */
  later: number | undefined;
  sent: string[] = [];
  cancelled: string[] = [];
  /** fail before the final dot (e.g. RCPT refused, server unreachable) */
  failing = new Set<string>();
  /** refused after the final dot (e.g. 552 at the end of DATA) */
  refusing = new Set<string>();
  gate: Promise<void> = Promise.resolve();
  /** the server's answer to these mails' final dots waits for the promise */
  slowAnswers = new Map<string, Promise<void>>();
  async hold(mails: readonly OutgoingMail[]): Promise<(HeldMail | Error)[]> {
    await this.gate;
    return mails.map(({ outboxId }) => {
      if (this.failing.has(outboxId)) return smtpReply(550, `mailbox unavailable (${outboxId})`);
      if (this.down) return smtpOutage('Greeting never received');
      if (this.later) return smtpReply(this.later, 'try again later');
      return {
        release: () => {
          const refused = this.refusing.has(outboxId);
          if (!refused) this.sent.push(outboxId);
          const answer = this.slowAnswers.get(outboxId) ?? Promise.resolve();
          const accepted = refused
            ? answer.then(() => Promise.reject(smtpReply(552, `refused (${outboxId})`)))
            : answer;
          accepted.catch(() => {});
          return { written: Promise.resolve(), accepted };
        },
        cancel: () => {
          this.cancelled.push(outboxId);
        },
      };
    });
  }
}

function fakeMetrics(): Metrics & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const handle = (name: string) => ({
    inc: (_labels?: unknown, value = 1) => counts.set(name, (counts.get(name) ?? 0) + value),
    set() {},
    dec() {},
    reset() {},
    observe() {},
    remove() {},
  });
  return {
    counts,
    counter: ({ name }) => handle(name),
    gauge: ({ name }) => handle(name),
    histogram: ({ name }) => handle(name),
    render: async () => ({ contentType: 'text/plain', body: '' }),
  };
}

/** one mail of shard-1 as the relay publishes it, alone or in a batch message */
function mailOf(outboxId: string) {
  return {
    outboxId,
    shardId: 'shard-1',
    tenantId: 'acme',
    kind: 'welcome',
    recipient: `${outboxId}@example.com`,
    payload: { tenantName: 'Acme', name: 'Ann' },
  };
}

/** resolves once `done()` holds, looking every tick (rejects after 1 s) */
async function waitUntil(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 1));
  if (!done()) throw new Error('condition not reached');
}

let tag = 0;
function message(
  outboxId: string,
  { shardId = 'shard-1', attempts = 0, body }: { shardId?: string; attempts?: unknown; body?: Buffer } = {},
): ConsumeMessage {
  const content = body ?? encodeMailMessage({ ...mailOf(outboxId), shardId });
  return {
    content,
    fields: { deliveryTag: ++tag, redelivered: false, exchange: '', routingKey: 'mail', consumerTag: 'c' },
    properties: { messageId: outboxId, contentType: 'application/json', headers: { 'x-attempts': attempts } },
  } as unknown as ConsumeMessage;
}

function setup({
  maxAttempts = 4,
  maxBatch = 16,
  maxSessions = 16,
  rerouteChannel,
}: {
  maxAttempts?: number;
  maxBatch?: number;
  maxSessions?: number;
  rerouteChannel?: () => Promise<FakeChannel>;
} = {}) {
  const ch = new FakeChannel();
  const store = new FakeStore();
  const sender = new FakeSender();
  sender.maxSessions = maxSessions;
  const metrics = fakeMetrics();
  const batcher = new DeliveryBatcher({
    store,
    sender,
    logger: silentLogger,
    metrics,
    maxAttempts,
    maxBatch,
    rerouteChannel,
  });
  const count = (name: string) => metrics.counts.get(name) ?? 0;
  return { ch, store, sender, metrics, batcher, count };
}

describe('countsAsAttempt', () => {
  /** an error of nodemailer's SMTPConnection (its _formatError), as SmtpSender wraps it */
  const nodemailerError = (message: string, code: string, command: string, responseCode?: number) =>
    new DependencyError('smtp', `smtp: ${message}`, {
      cause: Object.assign(new Error(message), { code, command, ...(responseCode ? { responseCode } : {}) }),
    });

  it("counts the client's own refusal of a mail and a 5xx; not an outage, a 4xx or a broken session", () => {
    expect(
      [
        nodemailerError('Invalid recipient "a@b.c\\r\\nBcc: x@y.z"', 'EENVELOPE', 'API'),
        nodemailerError('Empty message', 'EMESSAGE', 'API'),
        nodemailerError('Recipient command failed: 550 no such user', 'EENVELOPE', 'RCPT TO', 550),
        nodemailerError('Recipient command failed: 451 try later', 'EENVELOPE', 'RCPT TO', 451),
        nodemailerError('Connection closed', 'ECONNECTION', 'API'),
        nodemailerError('Greeting never received', 'ETIMEDOUT', 'CONN'),
      ].map(countsAsAttempt),
    ).toEqual([true, true, true, false, false, false]);
  });

  it('a master out of disk space or memory is an outage; a mail sent and not recorded is no attempt', () => {
    const mysql = (errno: number, code: string) =>
      Object.assign(new Error(`${code} from the server`), { errno, code, sqlState: 'HY000' });
    expect(
      [
        mysql(1021, 'ER_DISK_FULL'),
        mysql(1114, 'ER_RECORD_FILE_FULL'),
        mysql(1041, 'ER_OUT_OF_RESOURCES'),
        new MailSentUnrecordedError(new Error('COMMIT failed')),
        mysql(1064, 'ER_PARSE_ERROR'),
      ].map(countsAsAttempt),
    ).toEqual([false, false, false, false, true]);
  });
});

describe('DeliveryBatcher', () => {
  it('shows every counter at 0 before its first event (so /metrics lists it and rate() sees the first)', async () => {
    const metrics = createPromMetrics();
    new DeliveryBatcher({
      store: new FakeStore(),
      sender: new FakeSender(),
      logger: silentLogger,
      metrics,
      maxAttempts: 4,
    });
    const { body } = await metrics.render();
    for (const line of [
      'shardgate_mail_delivery_success_total{target="smtp"} 0',
      'shardgate_mail_delivery_failed_total{target="smtp"} 0',
      'shardgate_mail_duplicates_skipped_total{target="smtp"} 0',
      'shardgate_mail_retries_total{target="rabbitmq"} 0',
      'shardgate_mail_dead_lettered_total{target="rabbitmq"} 0',
    ])
      expect(body).toContain(line);
  });

  it('shows the messages it holds, which the queues no longer count, as mail_in_flight', async () => {
    const metrics = createPromMetrics();
    const store = new FakeStore();
    const sender = new FakeSender();
    let open = () => {};
    sender.gate = new Promise((r) => (open = r)); // an SMTP server that does not answer yet
    const batcher = new DeliveryBatcher({ store, sender, logger: silentLogger, metrics, maxAttempts: 4 });
    const ch = new FakeChannel();
    for (const id of ['a', 'b']) {
      store.rows.add(id);
      batcher.add(ch, message(id));
    }
    await new Promise((r) => setImmediate(r)); // flushed: both wait for the SMTP server
    expect((await metrics.render()).body).toContain('shardgate_mail_in_flight 2');
    open();
    expect(await batcher.drain(1000)).toBe(true);
    expect((await metrics.render()).body).toContain('shardgate_mail_in_flight 0');
  });

  it('delivers messages that arrive together in one store transaction per shard', async () => {
    const { ch, store, sender, batcher, count } = setup();
    for (const id of ['a', 'b', 'c']) store.rows.add(id);
    store.rows.add('d');
    const msgs = [message('a'), message('b'), message('c'), message('d', { shardId: 'shard-2' })];
    for (const m of msgs) batcher.add(ch, m);
    expect(store.calls).toEqual([]); // collected, flushed on the next turn
    expect(await batcher.drain(1000)).toBe(true);
    expect(store.calls).toEqual([
      { shardId: 'shard-1', ids: ['a', 'b', 'c'] },
      { shardId: 'shard-2', ids: ['d'] },
    ]);
    expect(sender.sent.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(ch.acked.sort()).toEqual(msgs.map((m) => m.fields.deliveryTag).sort());
    expect(ch.published).toEqual([]);
    expect(count('mail_delivery_success_total')).toBe(4);
  });

  it('a batch message of the relay is delivered in one transaction; a failed mail travels on alone; the original is acked after all', async () => {
    const { ch, store, sender, batcher, count } = setup();
    for (const id of ['a', 'b', 'c']) store.rows.add(id);
    sender.failing.add('b');
    const original = message('batch', { body: encodeMails([mailOf('a'), mailOf('b'), mailOf('c')]) });
    for (const part of splitMailMessage(ch, original)) batcher.add(part.ch, part.msg);
    expect(await batcher.drain(1000)).toBe(true);
    expect(store.calls).toEqual([{ shardId: 'shard-1', ids: ['a', 'b', 'c'] }]);
    expect([...store.delivered].sort()).toEqual(['a', 'c']);
    // b goes to the retry tier as a single-mail message of its own
    expect(ch.published).toEqual([
      {
        exchange: RETRY_EXCHANGE,
        routingKey: 'shardgate.mail.retry.1s',
        headers: {
          'x-attempts': 1,
          'x-outage-retries': 0,
          'x-last-error': 'smtp: 550 mailbox unavailable (b)',
        },
      },
    ]);
    expect(decodeMailMessage(ch.contents[0]!)?.outboxId).toBe('b');
    expect(ch.acked).toEqual([original.fields.deliveryTag]);
    expect(count('mail_delivery_success_total')).toBe(2);
    expect(count('mail_retries_total')).toBe(1);
  });

  it('a batch message whose reroute is not confirmed stays unacked, for the broker to redeliver', async () => {
    const { ch, store, sender, batcher } = setup();
    for (const id of ['a', 'b']) store.rows.add(id);
    sender.failing.add('b');
    ch.confirms = async () => {
      ch.closed = true;
      throw new Error('channel closed');
    };
    const original = message('batch', { body: encodeMails([mailOf('a'), mailOf('b')]) });
    for (const part of splitMailMessage(ch, original)) batcher.add(part.ch, part.msg);
    expect(await batcher.drain(1000)).toBe(true);
    expect([...store.delivered]).toEqual(['a']);
    expect(ch.acked).toEqual([]);
  });

  it('a batch with one failing send commits the others and reroutes that one to the retry tier', async () => {
    const { ch, store, sender, batcher, count } = setup();
    for (const id of ['a', 'b', 'c']) store.rows.add(id);
    sender.failing.add('b');
    const [a, b, c] = [message('a'), message('b', { attempts: 1 }), message('c')];
    for (const m of [a, b, c]) batcher.add(ch, m!);
    await batcher.drain(1000);
    expect([...store.delivered].sort()).toEqual(['a', 'c']);
    expect(ch.published).toEqual([
      {
        exchange: RETRY_EXCHANGE,
        routingKey: 'shardgate.mail.retry.2s',
        headers: {
          'x-attempts': 2,
          'x-outage-retries': 0,
          'x-last-error': 'smtp: 550 mailbox unavailable (b)',
        },
      },
    ]);
    // every one acked: a and c delivered, b once its retry copy was confirmed
    expect(ch.acked.sort()).toEqual([a, b, c].map((m) => m!.fields.deliveryTag).sort());
    expect(count('mail_delivery_success_total')).toBe(2);
    expect(count('mail_delivery_failed_total')).toBe(1);
    expect(count('mail_retries_total')).toBe(1);
  });

  it('publishes a reroute on the reroute channel (another connection) and acks the original on its own once confirmed', async () => {
    const publisher = new FakeChannel();
    let confirm = () => {};
    publisher.confirms = () => new Promise((resolve) => (confirm = resolve));
    const { ch, store, sender, batcher } = setup({ rerouteChannel: async () => publisher });
    for (const id of ['a', 'b']) store.rows.add(id);
    sender.failing.add('b');
    const [a, b] = [message('a'), message('b')];
    batcher.add(ch, a);
    batcher.add(ch, b);
    // a broker in a resource alarm holds the publish: the consuming channel still acks `a`
    await waitUntil(() => publisher.published.length === 1);
    expect(ch.published).toEqual([]);
    expect(ch.acked).toEqual([a.fields.deliveryTag]);
    confirm();
    expect(await batcher.drain(1000)).toBe(true);
    expect(publisher.published.map((p) => p.routingKey)).toEqual(['shardgate.mail.retry.1s']);
    expect(publisher.acked).toEqual([]);
    expect(ch.acked).toEqual([a.fields.deliveryTag, b.fields.deliveryTag]);
  });

  it("reroutes on the message's own channel when the reroute channel cannot be had", async () => {
    const { ch, store, sender, batcher, count } = setup({
      rerouteChannel: () => Promise.reject(new DependencyError('rabbitmq', 'connect ECONNREFUSED')),
    });
    store.rows.add('b');
    sender.failing.add('b');
    const b = message('b');
    batcher.add(ch, b);
    expect(await batcher.drain(1000)).toBe(true);
    expect(ch.published.map((p) => p.routingKey)).toEqual(['shardgate.mail.retry.1s']);
    expect(ch.acked).toEqual([b.fields.deliveryTag]);
    expect(count('mail_retries_total')).toBe(1);
  });

  it('publishes no retry copy for a message whose own channel is gone: the broker redelivers it anyway', async () => {
    const publisher = new FakeChannel();
    const { ch, store, sender, batcher, count } = setup({ rerouteChannel: async () => publisher });
    store.rows.add('b');
    sender.failing.add('b');
    // the consuming connection drops while the mail is being sent
    sender.gate = (async () => {
      ch.closed = true;
    })();
    batcher.add(ch, message('b'));
    expect(await batcher.drain(1000)).toBe(true);
    expect([publisher.published, ch.published, ch.acked, ch.requeued]).toEqual([[], [], [], []]);
    expect(count('mail_retries_total')).toBe(0);
  });

  it('publishes no retry copy either when its own channel goes while the reroute channel is opened', async () => {
    const publisher = new FakeChannel();
    const setupResult = setup({
      rerouteChannel: async () => {
        setupResult.ch.closed = true;
        return publisher;
      },
    });
    const { ch, store, sender, batcher } = setupResult;
    store.rows.add('b');
    sender.failing.add('b');
    batcher.add(ch, message('b'));
    expect(await batcher.drain(1000)).toBe(true);
    expect([publisher.published, ch.acked, ch.requeued]).toEqual([[], [], []]);
  });

  it('requeues the original on its own channel when the reroute channel goes before confirming', async () => {
    const publisher = new FakeChannel();
    publisher.confirms = async () => {
      publisher.closed = true;
      throw new Error('channel closed');
    };
    const { ch, store, sender, batcher, count } = setup({ rerouteChannel: async () => publisher });
    store.rows.add('b');
    sender.failing.add('b');
    const b = message('b');
    batcher.add(ch, b);
    expect(await batcher.drain(1000)).toBe(true);
    expect(ch.acked).toEqual([]);
    expect(ch.requeued).toEqual([b.fields.deliveryTag]);
    expect(count('mail_retries_total')).toBe(0);
  });

  it('acks a message whose row is already delivered without sending it', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.delivered.add('a');
    const m = message('a');
    batcher.add(ch, m);
    await batcher.drain(1000);
    expect(sender.sent).toEqual([]);
    expect(ch.acked).toEqual([m.fields.deliveryTag]);
    expect(count('mail_duplicates_skipped_total')).toBe(1);
    expect(count('mail_delivery_success_total')).toBe(0);
  });

  it('does not send a message whose row another transaction holds: it goes to the retry tier', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    store.lockedElsewhere.add('b');
    batcher.add(ch, message('a'));
    batcher.add(ch, message('b'));
    await batcher.drain(1000);
    expect(sender.sent).toEqual(['a']);
    expect(ch.published).toHaveLength(1);
    expect(ch.published[0]?.routingKey).toBe('shardgate.mail.retry.1s');
    expect(ch.published[0]?.headers['x-last-error']).toBe('outbox row b is locked by another delivery');
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_failed_total')).toBe(1);
    expect(count('mail_retries_total')).toBe(1);
  });

  it('sends a message that has no outbox row, with nothing to record', async () => {
    const { ch, store, sender, batcher, count } = setup();
    batcher.add(ch, message('ghost'));
    await batcher.drain(1000);
    expect(sender.sent).toEqual(['ghost']);
    expect(store.delivered.size).toBe(0);
    expect(ch.acked).toHaveLength(1);
    expect(count('mail_delivery_success_total')).toBe(1);
  });

  it('sends one mail for two copies of an outbox id in one batch and acks the copy as a duplicate', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    batcher.add(ch, message('a'));
    batcher.add(ch, message('a'));
    await batcher.drain(1000);
    expect(store.calls).toEqual([{ shardId: 'shard-1', ids: ['a'] }]);
    expect(sender.sent).toEqual(['a']);
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_success_total')).toBe(1);
    expect(count('mail_duplicates_skipped_total')).toBe(1);
  });

  it('reroutes every message of the batch when the transaction fails before the dots, dead-lettering the last attempt', async () => {
    const { ch, store, sender, batcher, count } = setup({ maxAttempts: 4 });
    store.rows.add('a');
    store.rows.add('b');
    store.beforeDots = async () => {
      throw new Error('UPDATE failed: a SQL error');
    };
    batcher.add(ch, message('a', { attempts: 3 }));
    batcher.add(ch, message('b', { attempts: 0 }));
    await batcher.drain(1000);
    expect(sender.sent).toEqual([]);
    expect(ch.published.map((p) => [p.exchange, p.routingKey, p.headers['x-attempts']])).toEqual([
      [DEAD_EXCHANGE, '', 4],
      [RETRY_EXCHANGE, 'shardgate.mail.retry.1s', 1],
    ]);
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_failed_total')).toBe(2);
    expect(count('mail_dead_lettered_total')).toBe(1);
    expect(count('mail_retries_total')).toBe(1);
    expect(count('mail_delivery_success_total')).toBe(0);
  });

  describe('a COMMIT that fails after the final dots (a master out of disk)', () => {
    /** a and b sent, their COMMIT failed once: the rerouted copies as the broker hands them back */
    async function failedCommit(opts: { attempts?: number } = {}) {
      const rig = setup({ maxAttempts: 4 });
      const { ch, store, sender, batcher } = rig;
      store.rows.add('a');
      store.rows.add('b');
      store.beforeCommit = async () => {
        throw Object.assign(new Error("Error writing file 'binlog' (Errcode: 28)"), {
          errno: 3,
          code: 'EE_WRITE',
          sqlState: 'HY000',
        });
      };
      batcher.add(ch, message('a', { attempts: opts.attempts ?? 3 }));
      batcher.add(ch, message('b', { attempts: 0 }));
      await batcher.drain(1000);
      expect(sender.sent.sort()).toEqual(['a', 'b']); // the dots out, no record
      expect(store.delivered.size).toBe(0);
      store.beforeCommit = async () => {};
      const retries = ch.published.map((p, i) => {
        const m = message(decodeMailMessage(ch.contents[i]!)!.outboxId);
        m.properties.headers = p.headers;
        return m;
      });
      return { ...rig, retries };
    }

    it('retries the mails sent as an outage, saying when they were sent, and the retry records them unsent', async () => {
      const { ch, store, sender, batcher, count, retries } = await failedCommit();
      // no attempt used: the mail itself is fine (a on its last attempt is not dead-lettered)
      expect(
        ch.published.map((p) => [p.exchange, p.headers['x-attempts'], p.headers['x-outage-retries']]),
      ).toEqual([
        [RETRY_EXCHANGE, 3, 1],
        [RETRY_EXCHANGE, 0, 1],
      ]);
      for (const p of ch.published) expect(Date.parse(String(p.headers[SENT_AT_HEADER]))).toBeGreaterThan(0);
      expect(String(ch.published[0]?.headers['x-last-error'])).toMatch(
        /^sent; its delivery could not be recorded/,
      );
      expect(count('mail_dead_lettered_total')).toBe(0);
      expect(count('mail_delivery_success_total')).toBe(2); // accepted by the server
      for (const m of retries) batcher.add(ch, m);
      await batcher.drain(1000);
      expect(store.sentBeforeCalls.at(-1)).toEqual(['a', 'b']);
      expect(sender.sent.sort()).toEqual(['a', 'b']); // not sent again
      expect([...store.delivered].sort()).toEqual(['a', 'b']);
      expect(ch.acked).toHaveLength(4);
      expect(count('mail_duplicates_skipped_total')).toBe(2);
      expect(count('mail_delivery_success_total')).toBe(2);
      // once recorded, nothing is remembered: a later copy is a plain duplicate
      batcher.add(ch, message('a'));
      await batcher.drain(1000);
      expect(store.calls.at(-1)).toEqual({ shardId: 'shard-1', ids: ['a'] });
      expect(store.sentBeforeCalls.at(-1)).toEqual([]);
      expect(sender.sent).toHaveLength(2);
    });

    it('a copy without the header (a relay publishing the row again) is recorded, not sent, by the process that sent it', async () => {
      const { ch, store, sender, batcher, count } = await failedCommit();
      batcher.add(ch, message('a'));
      await batcher.drain(1000);
      expect(sender.sent.sort()).toEqual(['a', 'b']);
      expect([...store.delivered]).toEqual(['a']);
      expect(count('mail_duplicates_skipped_total')).toBe(1);
    });

    it('a copy whose batch begins while the first one is still on its way waits for it, and records the mail', async () => {
      const { ch, store, sender, batcher, count } = setup();
      store.rows.add('a');
      let open = () => {};
      sender.gate = new Promise((r) => (open = r)); // the first batch waits in its SMTP step
      store.beforeCommit = async () => {
        store.beforeCommit = async () => {};
        throw new Error('COMMIT failed: Disk full');
      };
      batcher.add(ch, message('a'));
      await new Promise((r) => setImmediate(r)); // flushed: the first batch holds the mail
      batcher.add(ch, message('a')); // another process's relay published the row too
      await new Promise((r) => setImmediate(r));
      open();
      await batcher.drain(1000);
      expect(sender.sent).toEqual(['a']); // before: ['a', 'a'], the second batch ran beside the first
      expect(store.sentBeforeCalls).toEqual([[], ['a']]);
      expect([...store.delivered]).toEqual(['a']);
      expect(count('mail_duplicates_skipped_total')).toBe(1);
    });

    it('a mail refused in that batch, at RCPT or after its dot, keeps its own reason: a 5xx uses an attempt', async () => {
      const { ch, store, sender, batcher } = setup();
      for (const id of ['a', 'b', 'c']) store.rows.add(id);
      sender.refusing.add('b');
      sender.failing.add('c'); // 550 at RCPT
      store.beforeCommit = async () => {
        // an outage of the master, no attempt of its own
        throw Object.assign(new Error("Error writing file 'binlog' (Errcode: 28)"), {
          errno: 1026,
          code: 'ER_ERROR_ON_WRITE',
          sqlState: 'HY000',
        });
      };
      for (const id of ['a', 'b', 'c']) batcher.add(ch, message(id));
      await batcher.drain(1000);
      expect(sender.sent).toEqual(['a']);
      const byId = (id: string) =>
        ch.published.find((_, i) => decodeMailMessage(ch.contents[i]!)?.outboxId === id)?.headers;
      expect(byId('a')).toMatchObject({ 'x-attempts': 0, 'x-outage-retries': 1 });
      expect(byId('a')?.[SENT_AT_HEADER]).toBeDefined();
      expect(byId('b')).toMatchObject({ 'x-attempts': 1, 'x-outage-retries': 0 });
      expect(String(byId('b')?.['x-last-error'])).toMatch(/552 refused/);
      expect(byId('b')?.[SENT_AT_HEADER]).toBeUndefined();
      expect(byId('c')).toMatchObject({ 'x-attempts': 1, 'x-outage-retries': 0 });
      expect(String(byId('c')?.['x-last-error'])).toMatch(/550 mailbox unavailable/);
    });

    it("a copy waits only for the earlier batch's record, not its reroute; the other mails of its batch go at once", async () => {
      const { ch, store, sender, batcher } = setup();
      for (const id of ['a', 'x', 'b']) store.rows.add(id);
      sender.refusing.add('x');
      let confirm = () => {};
      ch.confirms = () => new Promise<void>((r) => (confirm = r)); // the broker holds x's reroute
      batcher.add(ch, message('a'));
      batcher.add(ch, message('x'));
      await new Promise((r) => setImmediate(r));
      await vi.waitFor(() => expect(ch.published).toHaveLength(1)); // x's reroute, not confirmed
      expect([...store.delivered]).toEqual(['a']);
      batcher.add(ch, message('a')); // a copy of a…
      batcher.add(ch, message('b')); // …with an unrelated mail
      await vi.waitFor(() => expect(sender.sent.sort()).toEqual(['a', 'b']));
      await vi.waitFor(() => expect(store.calls).toHaveLength(3)); // the copy ran on its own
      expect(store.calls.at(-1)?.ids).toEqual(['a']);
      expect(sender.sent.filter((id) => id === 'a')).toHaveLength(1);
      confirm();
      expect(await batcher.drain(1000)).toBe(true);
    });

    it("a copy does not wait for the earlier batch's answers to its dots: only for its COMMIT", async () => {
      const { ch, store, sender, batcher, count } = setup();
      store.rows.add('a');
      store.rows.add('x');
      let answer = () => {};
      sender.slowAnswers.set('x', new Promise<void>((r) => (answer = r))); // up to 10 min
      batcher.add(ch, message('a'));
      batcher.add(ch, message('x'));
      await vi.waitFor(() => expect([...store.delivered].sort()).toEqual(['a', 'x'])); // committed
      batcher.add(ch, message('a'));
      // the copy ran while x's answer is still awaited (before: it waited for it)
      await vi.waitFor(() => expect(store.calls).toHaveLength(2));
      expect(sender.sent.filter((id) => id === 'a')).toHaveLength(1);
      expect(count('mail_duplicates_skipped_total')).toBe(1);
      answer();
      expect(await batcher.drain(1000)).toBe(true);
    });

    it('another worker records a mail by its header alone', async () => {
      const { retries } = await failedCommit();
      const other = setup();
      other.store.rows.add('a');
      other.batcher.add(other.ch, retries[0]!);
      await other.batcher.drain(1000);
      expect(other.sender.sent).toEqual([]);
      expect([...other.store.delivered]).toEqual(['a']);
      expect(other.ch.acked).toHaveLength(1);
    });

    it('a record that fails again keeps the header, and uses no attempt either', async () => {
      const { ch, store, sender, batcher, retries } = await failedCommit();
      store.onBegin = async () => {
        throw Object.assign(new Error('Disk full (binlog); waiting for someone to free some space'), {
          errno: 1021,
          code: 'ER_DISK_FULL',
          sqlState: 'HY000',
        });
      };
      const before = ch.published.length;
      for (const m of retries) batcher.add(ch, m);
      await batcher.drain(1000);
      const again = ch.published.slice(before);
      expect(again.map((p) => [p.headers['x-attempts'], p.headers['x-outage-retries']])).toEqual([
        [3, 2],
        [0, 2],
      ]);
      // the time of the send, kept from the copy it came with
      expect(again.map((p) => p.headers[SENT_AT_HEADER])).toEqual(
        retries.map((m) => m.properties.headers?.[SENT_AT_HEADER]),
      );
      expect(sender.sent).toHaveLength(2);
    });
  });

  it('an SMTP outage uses no attempt: the mail is retried with a growing delay, never dead-lettered for it', async () => {
    const { ch, store, sender, batcher, count } = setup({ maxAttempts: 4 });
    store.rows.add('a');
    sender.down = true;
    // its last attempt left, and already six outage retries behind it
    const msg = message('a', { attempts: 3 });
    msg.properties.headers!['x-outage-retries'] = 6;
    batcher.add(ch, msg);
    await batcher.drain(1000);
    expect(ch.published).toEqual([
      {
        exchange: RETRY_EXCHANGE,
        routingKey: 'shardgate.mail.retry.64s',
        headers: {
          'x-attempts': 3,
          'x-outage-retries': 7,
          'x-last-error': 'smtp: Greeting never received',
        },
      },
    ]);
    expect(count('mail_dead_lettered_total')).toBe(0);
    // a refusal by the server is the mail's own failure: that one uses its last attempt
    sender.down = false;
    sender.failing.add('a');
    batcher.add(ch, message('a', { attempts: 3 }));
    await batcher.drain(1000);
    expect(ch.published[1]?.exchange).toBe(DEAD_EXCHANGE);
    expect(count('mail_dead_lettered_total')).toBe(1);
  });

  it('marks the outbox row dead-lettered before the mail is published to the dead-letter queue', async () => {
    const { ch, store, sender, batcher, count } = setup({ maxAttempts: 2 });
    store.rows.add('a');
    store.rows.add('b');
    sender.failing.add('a');
    sender.failing.add('b');
    // when the mark is written, nothing is published yet
    let publishedAtMark = -1;
    store.onMark = async () => {
      publishedAtMark = ch.published.length;
    };
    batcher.add(ch, message('a', { attempts: 1 }));
    batcher.add(ch, message('b', { attempts: 0 }));
    await batcher.drain(1000);
    expect(store.markCalls).toEqual([{ shardId: 'shard-1', ids: ['a'] }]);
    expect(publishedAtMark).toBe(0);
    expect([...store.deadMarks]).toEqual(['a']);
    expect(ch.published.map((p) => p.exchange)).toEqual([DEAD_EXCHANGE, RETRY_EXCHANGE]);
    expect(count('mail_dead_lettered_total')).toBe(1);
  });

  it('marks each mail of a split batch message on its own', async () => {
    const { ch, store, sender, batcher } = setup({ maxAttempts: 1 });
    for (const id of ['a', 'b', 'c']) store.rows.add(id);
    sender.failing.add('a');
    sender.failing.add('c');
    const batch = message('a', { body: encodeMails(['a', 'b', 'c'].map(mailOf)) });
    for (const part of splitMailMessage(ch, batch)) batcher.add(part.ch, part.msg);
    await batcher.drain(1000);
    expect([...store.deadMarks].sort()).toEqual(['a', 'c']);
    expect(ch.published.map((p) => p.exchange)).toEqual([DEAD_EXCHANGE, DEAD_EXCHANGE]);
    expect(ch.acked).toHaveLength(1); // the batch message, once every part was acked
  });

  it('a mark that cannot be written (master down) retries the mail as an outage, never dead-letters it unmarked', async () => {
    const { ch, store, sender, batcher, count } = setup({ maxAttempts: 2 });
    store.rows.add('a');
    sender.failing.add('a');
    store.onMark = async () => {
      throw new DependencyError('mysql-master:shard-1', 'connect ECONNREFUSED');
    };
    batcher.add(ch, message('a', { attempts: 1 }));
    await batcher.drain(1000);
    expect(
      ch.published.map((p) => [p.exchange, p.headers['x-attempts'], p.headers['x-outage-retries']]),
    ).toEqual([[RETRY_EXCHANGE, 1, 1]]);
    expect(count('mail_dead_lettered_total')).toBe(0);
    expect(ch.acked).toHaveLength(1);
    // the master back: its next failure dead-letters it, marked
    store.onMark = async () => {};
    const again = message('a', { attempts: 1 });
    again.properties.headers!['x-outage-retries'] = 1;
    batcher.add(ch, again);
    await batcher.drain(1000);
    expect(ch.published[1]?.exchange).toBe(DEAD_EXCHANGE);
    expect([...store.deadMarks]).toEqual(['a']);
  });

  it('clears the mark again when the dead-letter publish is not confirmed (the mail goes back to the work queue)', async () => {
    const { ch, store, sender, batcher } = setup({ maxAttempts: 1 });
    store.rows.add('a');
    sender.failing.add('a');
    ch.confirms = async () => {
      throw new Error('nacked');
    };
    batcher.add(ch, message('a'));
    await batcher.drain(1000);
    expect(store.markCalls).toHaveLength(1);
    expect(store.deadMarks.size).toBe(0);
    expect(ch.requeued).toHaveLength(1);
  });

  it('dead-letters a poison message without marking anything', async () => {
    const { ch, store, batcher } = setup({ maxAttempts: 1 });
    batcher.add(ch, message('x', { body: Buffer.from('not json') }));
    await batcher.drain(1000);
    expect(store.markCalls).toEqual([]);
    expect(ch.published.map((p) => p.exchange)).toEqual([DEAD_EXCHANGE]);
  });

  it('a transient SMTP reply (4xx, e.g. greylisting) uses no attempt either', async () => {
    const { ch, store, sender, batcher, count } = setup({ maxAttempts: 4 });
    store.rows.add('a');
    sender.later = 451;
    batcher.add(ch, message('a', { attempts: 3 }));
    await batcher.drain(1000);
    expect(
      ch.published.map((p) => [p.exchange, p.headers['x-attempts'], p.headers['x-outage-retries']]),
    ).toEqual([[RETRY_EXCHANGE, 3, 1]]);
    expect(count('mail_dead_lettered_total')).toBe(0);
  });

  it('a failure before the final dots cancels every held mail: nothing sent, all rerouted', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    store.beforeDots = async () => {
      throw new Error('UPDATE failed: connection lost');
    };
    batcher.add(ch, message('a'));
    batcher.add(ch, message('b'));
    await batcher.drain(1000);
    expect(sender.sent).toEqual([]);
    expect(sender.cancelled.sort()).toEqual(['a', 'b']);
    expect(store.delivered.size).toBe(0);
    expect(ch.published.map((p) => p.routingKey)).toEqual([
      'shardgate.mail.retry.1s',
      'shardgate.mail.retry.1s',
    ]);
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_failed_total')).toBe(2);
  });

  it('a mail refused after its final dot is rerouted with the reason and stays unmarked; the others commit', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    sender.refusing.add('b');
    batcher.add(ch, message('a'));
    batcher.add(ch, message('b'));
    await batcher.drain(1000);
    expect(sender.sent).toEqual(['a']);
    expect([...store.delivered]).toEqual(['a']);
    expect(ch.published).toHaveLength(1);
    expect(ch.published[0]?.headers['x-last-error']).toBe('smtp: 552 refused (b)');
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_success_total')).toBe(1);
    expect(count('mail_delivery_failed_total')).toBe(1);
  });

  it('keeps a batch within the SMTP sessions the sender has, whatever maxBatch says', async () => {
    const { ch, store, batcher } = setup({ maxBatch: 16, maxSessions: 2 });
    for (const id of ['a', 'b', 'c']) {
      store.rows.add(id);
      batcher.add(ch, message(id));
    }
    await batcher.drain(1000);
    expect(store.calls.map((c) => c.ids)).toEqual([['a', 'b'], ['c']]);
    expect(ch.acked).toHaveLength(3);
  });

  it('reroutes a poison message without touching the store and keeps the others flowing', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    batcher.add(ch, message('x', { body: Buffer.from('{"not":"a mail"}') }));
    batcher.add(ch, message('a'));
    await batcher.drain(1000);
    expect(store.calls).toEqual([{ shardId: 'shard-1', ids: ['a'] }]);
    expect(sender.sent).toEqual(['a']);
    expect(ch.published).toHaveLength(1);
    expect(ch.published[0]?.headers['x-last-error']).toBe('not a mail message');
    expect(ch.acked).toHaveLength(2);
    expect(count('mail_delivery_failed_total')).toBe(1);
  });

  it('dead-letters a message whose x-attempts header is not a count', async () => {
    const { ch, batcher, count } = setup({ maxAttempts: 4 });
    batcher.add(ch, message('x', { attempts: 'lots', body: Buffer.from('nope') }));
    await batcher.drain(1000);
    expect(ch.published.map((p) => p.exchange)).toEqual([DEAD_EXCHANGE]);
    expect(count('mail_dead_lettered_total')).toBe(1);
  });

  it('leaves failed messages unacked when the reroute is not confirmed (the broker redelivers)', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    sender.failing.add('b');
    ch.confirms = async () => {
      ch.closed = true;
      throw new Error('channel closed');
    };
    const a = message('a');
    batcher.add(ch, a);
    batcher.add(ch, message('b'));
    await batcher.drain(1000);
    expect(ch.acked).toEqual([a.fields.deliveryTag]);
    expect(count('mail_retries_total')).toBe(0);
  });

  it('requeues the originals when the broker nacks their reroute on a live channel', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    sender.failing.add('b');
    ch.confirms = async () => {
      throw new Error('message nacked');
    };
    const [a, b] = [message('a'), message('b')];
    batcher.add(ch, a);
    batcher.add(ch, b);
    expect(await batcher.drain(1000)).toBe(true);
    expect(batcher.inFlight).toBe(0);
    expect(ch.acked).toEqual([a.fields.deliveryTag]);
    expect(ch.requeued).toEqual([b.fields.deliveryTag]);
    expect(count('mail_retries_total')).toBe(0);
  });

  it('requeues the originals and closes the channel when no queue took their reroute (a tier deleted by hand)', async () => {
    const { ch, store, sender, batcher, count } = setup();
    store.rows.add('a');
    store.rows.add('b');
    sender.failing.add('b');
    // the broker returns the mandatory publish before it confirms it
    ch.confirms = async () => {
      for (const listener of ch.returns) listener(message('b'));
    };
    const [a, b] = [message('a'), message('b')];
    batcher.add(ch, a);
    batcher.add(ch, b);
    expect(await batcher.drain(1000)).toBe(true);
    expect(ch.published.length).toBe(1);
    expect(ch.acked).toEqual([a.fields.deliveryTag]);
    expect(ch.requeued).toEqual([b.fields.deliveryTag]);
    expect(ch.closed).toBe(true);
    expect(ch.returns.size).toBe(0);
    expect(count('mail_retries_total')).toBe(0);
  });

  it('flushes a shard batch at once when it reaches maxBatch', async () => {
    const { ch, store, batcher } = setup({ maxBatch: 2 });
    for (const id of ['a', 'b', 'c']) {
      store.rows.add(id);
      batcher.add(ch, message(id));
    }
    expect(store.calls).toEqual([{ shardId: 'shard-1', ids: ['a', 'b'] }]);
    await batcher.drain(1000);
    expect(store.calls).toEqual([
      { shardId: 'shard-1', ids: ['a', 'b'] },
      { shardId: 'shard-1', ids: ['c'] },
    ]);
    expect(ch.acked).toHaveLength(3);
  });

  it('drain waits for an in-flight batch, and gives up after its timeout', async () => {
    const { ch, store, sender, batcher } = setup();
    store.rows.add('a');
    let release = () => {};
    sender.gate = new Promise<void>((r) => {
      release = r;
    });
    batcher.add(ch, message('a'));
    await new Promise((r) => setImmediate(r));
    expect(store.calls).toHaveLength(1);
    expect(await batcher.drain(30)).toBe(false);
    expect(batcher.inFlight).toBe(1);
    const drained = batcher.drain(1000);
    let done = false;
    void drained.then(() => {
      done = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    expect(ch.acked).toEqual([]);
    release();
    expect(await drained).toBe(true);
    expect(ch.acked).toHaveLength(1);
    expect(batcher.inFlight).toBe(0);
  });

  it('drain delivers messages collected but not yet flushed', async () => {
    const { ch, store, batcher } = setup();
    store.rows.add('a');
    batcher.add(ch, message('a'));
    expect(await batcher.drain(1000)).toBe(true);
    expect(store.calls).toHaveLength(1);
    expect(ch.acked).toHaveLength(1);
  });
});
