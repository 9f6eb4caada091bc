import type { GetMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { encodeMails } from '../src/mail/mail-message.js';
import { positiveCount } from './commands/mail.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { brokerRefusal, describeDeadLetter, redactUrl } from './mail-queues.js';

const mail = (outboxId: string) => ({
  outboxId,
  shardId: 'shard-1',
  tenantId: 't-1',
  kind: 'welcome',
  recipient: 'a@example.com',
  payload: {},
});

function message(content: Buffer, headers: Record<string, unknown> = {}, messageId?: string): GetMessage {
  return { content, properties: { headers, messageId }, fields: {} } as unknown as GetMessage;
}

describe('redactUrl', () => {
  it('drops the user and password, keeps host, port and vhost', () => {
    expect(redactUrl('amqp://guest:s3cret@10.0.0.5:5673/prod')).toBe('amqp://10.0.0.5:5673/prod');
    expect(redactUrl('amqps://u:p@mq.example.com')).toBe('amqps://mq.example.com');
    expect(redactUrl('not a url')).toBe('(invalid URL)');
  });
});

describe('describeDeadLetter', () => {
  it('reads a single mail with the counts the worker wrote', () => {
    const d = describeDeadLetter(
      message(
        encodeMails([mail('01A')]),
        { 'x-attempts': 4, 'x-outage-retries': 2, 'x-last-error': '550 no' },
        '01A',
      ),
    );
    expect(d).toMatchObject({
      messageId: '01A',
      poison: false,
      attempts: 4,
      outageRetries: 2,
      lastError: '550 no',
      redriven: 0,
    });
    expect(d.mails.map((m) => m.outboxId)).toEqual(['01A']);
  });

  it('reads every mail of a batch message', () => {
    const d = describeDeadLetter(message(encodeMails([mail('01A'), mail('01B')])));
    expect(d.mails.map((m) => m.outboxId)).toEqual(['01A', '01B']);
    expect(d.poison).toBe(false);
  });

  it('marks anything else poison, and a count header that is not a count as unknown', () => {
    const d = describeDeadLetter(
      message(Buffer.from('{"not":"a mail"}'), { 'x-attempts': 'four', 'x-redriven': 2 }),
    );
    expect(d).toMatchObject({
      poison: true,
      mails: [],
      attempts: null,
      outageRetries: 0,
      redriven: 2,
      lastError: null,
    });
    expect(describeDeadLetter(message(Buffer.from([0xff, 0x00]))).poison).toBe(true);
  });
});

describe('positiveCount', () => {
  it('takes whole numbers from 1 and names the option otherwise', () => {
    expect(positiveCount('--limit', undefined)).toBeUndefined();
    expect(positiveCount('--limit', '25')).toBe(25);
    for (const bad of ['0', '-1', '1.5', 'ten', '', '1e3'])
      expect(() => positiveCount('--limit', bad)).toThrow(UserError);
    expect(() => positiveCount('--limit', 'x')).toThrow(/--limit must be a whole number ≥ 1, got 'x'/);
  });
});

describe('brokerRefusal', () => {
  const where = 'amqp://10.0.0.5:5673';

  it('turns a refused login or vhost into a user error that names the broker, not the credentials', () => {
    const login = brokerRefusal(
      where,
      new Error(
        'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN."',
      ),
    );
    expect(login).toBeInstanceOf(UserError);
    expect(login?.message).toBe(
      'rabbitmq at amqp://10.0.0.5:5673 refused the credentials of SHARDGATE_AMQP_URL (ACCESS_REFUSED)',
    );
    const vhost = brokerRefusal(
      `${where}/prod`,
      new Error('Expected ConnectionOpenOk; got <ConnectionClose channel:0>'),
    );
    expect(vhost?.message).toMatch(/^rabbitmq at amqp:\/\/10\.0\.0\.5:5673\/prod refused to open the vhost/);
  });

  it('leaves every other failure to the unreachable path', () => {
    for (const e of [
      new Error('connect ECONNREFUSED 127.0.0.1:1'),
      new UnreachableError('x'),
      'socket hang up',
    ])
      expect(brokerRefusal(where, e)).toBeUndefined();
  });
});
