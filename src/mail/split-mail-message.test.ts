import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import type { MailChannel } from './delivery-batcher.js';
import { decodeMailMessage, encodeMails, type MailMessage } from './mail-message.js';
import { splitMailMessage } from './split-mail-message.js';

const mail = (n: number): MailMessage => ({
  outboxId: `01OUTBOX${n}`,
  shardId: 'shard-1',
  tenantId: 't1',
  kind: 'welcome',
  recipient: `m${n}@example.com`,
  payload: {},
});

function message(content: Buffer): ConsumeMessage {
  return {
    content,
    fields: {
      deliveryTag: 7,
      redelivered: false,
      exchange: 'shardgate.mail',
      routingKey: 'mail',
      consumerTag: 'c',
    },
    properties: { messageId: 'batch', headers: { 'x-attempts': 0 }, contentType: 'application/json' },
  } as unknown as ConsumeMessage;
}

function channel() {
  const acked: ConsumeMessage[] = [];
  const requeued: ConsumeMessage[] = [];
  const published: { exchange: string; content: Buffer }[] = [];
  let confirms = 0;
  let closed = 0;
  const ch: MailChannel = {
    ack: (m) => void acked.push(m),
    nack: (m, allUpTo, requeue) => {
      if (allUpTo !== false || requeue !== true) throw new Error('only a requeue of one message');
      requeued.push(m);
    },
    publish: (exchange, _key, content) => {
      published.push({ exchange, content });
      return true;
    },
    waitForConfirms: async () => {
      confirms++;
    },
    on: () => ch,
    off: () => ch,
    close: async () => {
      closed++;
    },
  };
  return { ch, acked, requeued, published, confirms: () => confirms, closed: () => closed };
}

describe('splitMailMessage', () => {
  it('hands the return listeners and a close of a part to the real channel', async () => {
    const { ch, closed } = channel();
    let onCalls = 0;
    const real = { ...ch, on: () => onCalls++, off: () => onCalls++ } as MailChannel;
    const [part] = splitMailMessage(real, message(encodeMails([mail(1), mail(2)])));
    const listener = () => {};
    part!.ch.on('return', listener);
    part!.ch.off('return', listener);
    expect(onCalls).toBe(2);
    await part!.ch.close();
    expect(closed()).toBe(1);
  });

  it("tells a part's channel closed once the real one is", () => {
    let open = true;
    const real: MailChannel = { ...channel().ch, isOpen: () => open };
    const [part] = splitMailMessage(real, message(encodeMails([mail(1), mail(2)])));
    expect(part!.ch.isOpen?.()).toBe(true);
    open = false;
    expect(part!.ch.isOpen?.()).toBe(false);
  });

  it('passes a single-mail message (or poison) through on the real channel', () => {
    const { ch } = channel();
    for (const body of [encodeMails([mail(1)]), Buffer.from('{"not":"a mail"}')]) {
      const msg = message(body);
      expect(splitMailMessage(ch, msg)).toEqual([{ ch, msg }]);
    }
  });

  it('gives one single-mail part per row, named by its outbox id, with the original headers', () => {
    const { ch } = channel();
    const parts = splitMailMessage(ch, message(encodeMails([mail(1), mail(2), mail(3)])));
    expect(parts.map((p) => decodeMailMessage(p.msg.content))).toEqual([mail(1), mail(2), mail(3)]);
    expect(parts.map((p) => p.msg.properties.messageId)).toEqual(['01OUTBOX1', '01OUTBOX2', '01OUTBOX3']);
    expect(parts.every((p) => p.msg.properties.headers?.['x-attempts'] === 0)).toBe(true);
  });

  it('acks the original once, after every part was acked, however often a part is acked', () => {
    const { ch, acked } = channel();
    const original = message(encodeMails([mail(1), mail(2), mail(3)]));
    const [a, b, c] = splitMailMessage(ch, original);
    a!.ch.ack(a!.msg);
    a!.ch.ack(a!.msg);
    b!.ch.ack(b!.msg);
    expect(acked).toEqual([]);
    c!.ch.ack(c!.msg);
    expect(acked).toEqual([original]);
  });

  it('leaves the original unacked while one part is not (the broker then redelivers the batch)', () => {
    const { ch, acked } = channel();
    const [a, b] = splitMailMessage(ch, message(encodeMails([mail(1), mail(2)])));
    a!.ch.ack(a!.msg);
    expect(acked).toEqual([]);
    expect(b).toBeDefined();
  });

  it('requeues the original once when a part is nacked, and acks it no more after', () => {
    const { ch, acked, requeued } = channel();
    const original = message(encodeMails([mail(1), mail(2), mail(3)]));
    const [a, b, c] = splitMailMessage(ch, original);
    a!.ch.ack(a!.msg);
    b!.ch.nack(b!.msg, false, true);
    c!.ch.nack(c!.msg, false, true);
    c!.ch.ack(c!.msg);
    expect(requeued).toEqual([original]);
    expect(acked).toEqual([]);
  });

  it('sends a part’s reroute and its confirm wait to the real channel', async () => {
    const { ch, published, confirms } = channel();
    const [a] = splitMailMessage(ch, message(encodeMails([mail(1), mail(2)])));
    a!.ch.publish('shardgate.mail.retry', 'shardgate.mail.retry.1s', a!.msg.content);
    await a!.ch.waitForConfirms();
    expect(published).toHaveLength(1);
    expect(decodeMailMessage(published[0]!.content)).toEqual(mail(1));
    expect(confirms()).toBe(1);
  });
});
