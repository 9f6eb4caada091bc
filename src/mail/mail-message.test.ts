import { describe, expect, it } from 'vitest';
import {
  decodeMailBatch,
  decodeMailMessage,
  encodeMails,
  MAX_MAILS_PER_MESSAGE,
  type MailMessage,
} from './mail-message.js';

const mail = (n: number, shardId = 'shard-1'): MailMessage => ({
  outboxId: `01OUTBOX${n}`,
  shardId,
  tenantId: 't1',
  kind: 'welcome',
  recipient: `m${n}@example.com`,
  payload: { name: `M ${n}` },
});

describe('encodeMails', () => {
  it('sends one row as a single-mail message, as the retry tiers hold it', () => {
    const body = encodeMails([mail(1)]);
    expect(decodeMailMessage(body)).toEqual(mail(1));
    expect(decodeMailBatch(body)).toBeUndefined();
  });

  it('sends several rows of one shard as one batch message, in order', () => {
    const body = encodeMails([mail(1), mail(2), mail(3)]);
    expect(decodeMailBatch(body)).toEqual([mail(1), mail(2), mail(3)]);
    expect(decodeMailMessage(body)).toBeUndefined();
  });

  it('refuses no rows, too many, and rows of two shards', () => {
    expect(() => encodeMails([])).toThrow(RangeError);
    const many = Array.from({ length: MAX_MAILS_PER_MESSAGE + 1 }, (_, i) => mail(i));
    expect(() => encodeMails(many)).toThrow(RangeError);
    expect(() => encodeMails([mail(1), mail(2, 'shard-2')])).toThrow(/one shard/);
  });
});

describe('decodeMailBatch', () => {
  it('takes nothing that is not a well-formed batch of one shard', () => {
    const bad = [
      'not json',
      '{"mails":[]}',
      JSON.stringify({ mails: [mail(1)] }), // a batch of one is sent as a single mail
      JSON.stringify({ mails: [mail(1), { ...mail(2), outboxId: '' }] }),
      JSON.stringify({ mails: [mail(1), mail(2, 'shard-2')] }),
    ];
    for (const b of bad) expect(decodeMailBatch(Buffer.from(b)), b).toBeUndefined();
  });
});
