import { EventEmitter } from 'node:events';
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { mailChannelOf } from './mail-consumer.js';

describe('mailChannelOf', () => {
  it('says the channel is closed once amqplib emits its `close`, and passes every call to it', async () => {
    const calls: string[] = [];
    const fake = Object.assign(new EventEmitter(), {
      ack: () => calls.push('ack'),
      nack: (_m: unknown, allUpTo: boolean, requeue: boolean) => calls.push(`nack ${allUpTo} ${requeue}`),
      publish: (exchange: string, key: string) => calls.push(`publish ${exchange} ${key}`) > 0,
      waitForConfirms: async () => void calls.push('confirms'),
      close: async () => void calls.push('close'),
    });
    const ch = mailChannelOf(fake as unknown as ConfirmChannel);
    const msg = {} as ConsumeMessage;
    ch.ack(msg);
    ch.nack(msg, false, true);
    expect(ch.publish('x', 'k', Buffer.from(''))).toBe(true);
    await ch.waitForConfirms();
    const onReturn = () => calls.push('return');
    ch.on('return', onReturn);
    fake.emit('return', msg);
    ch.off('return', onReturn);
    fake.emit('return', msg);
    await ch.close();
    expect(calls).toEqual(['ack', 'nack false true', 'publish x k', 'confirms', 'return', 'close']);
    expect(ch.isOpen?.()).toBe(true);
    fake.emit('close');
    expect(ch.isOpen?.()).toBe(false);
  });
});
