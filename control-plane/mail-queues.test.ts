import type { GetMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { encodeMails } from '../src/mail/mail-message.js';
import { describeLetter, positiveCount, printable } from './commands/mail.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { brokerRefusal, brokerUnreachable, describeDeadLetter, redactUrl } from './mail-queues.js';

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
    // amqplib words a missing vhost, a denied one and its connection limit alike: all three named
    expect(vhost?.message).toContain(
      "no such vhost, the user has no access to it, the vhost's or the user's connection limit (max-connections) is reached, or the vhost is down",
    );
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

describe('brokerUnreachable', () => {
  const where = 'amqp://127.0.0.1:5699';

  it("words a socket error as the etcd line does, not as Node's raw message", () => {
    // before: `rabbitmq unreachable at …: connect ECONNREFUSED 127.0.0.1:5699`
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5699'), { code: 'ECONNREFUSED' });
    const e = brokerUnreachable(where, refused);
    expect(e).toBeInstanceOf(UnreachableError);
    expect(e.message).toBe('rabbitmq unreachable at amqp://127.0.0.1:5699: connection refused');
    expect(brokerUnreachable(where, new Error('getaddrinfo ENOTFOUND rabbit.invalid')).message).toBe(
      'rabbitmq unreachable at amqp://127.0.0.1:5699: unknown host',
    );
  });

  it('keeps the first line of any other failure, without credentials', () => {
    expect(brokerUnreachable(where, new Error('no answer to the handshake within 5 s')).message).toBe(
      'rabbitmq unreachable at amqp://127.0.0.1:5699: no answer to the handshake within 5 s',
    );
    const quoted = brokerUnreachable(
      where,
      new Error('bad frame from amqp://guest:secret@127.0.0.1:5699\nmore'),
    );
    expect(quoted.message).toBe(
      'rabbitmq unreachable at amqp://127.0.0.1:5699: bad frame from amqp://127.0.0.1:5699',
    );
    expect(quoted.message).not.toContain('secret');
  });

  it('passes an UnreachableError through', () => {
    const e = new UnreachableError('rabbitmq unreachable at x: y');
    expect(brokerUnreachable(where, e)).toBe(e);
  });
});

describe('printable', () => {
  it('escapes control characters, line separators and bidi controls, and the backslash', () => {
    expect(printable('a@example.com\nshardgate-ctl: fake')).toBe('a@example.com\\nshardgate-ctl: fake');
    expect(printable('\r\t\\')).toBe('\\r\\t\\\\');
    expect(printable('welcome\u001b[2J\u0007\u0000\u007f')).toBe('welcome\\x1b[2J\\x07\\x00\\x7f');
    expect(printable('\u0085\u009b')).toBe('\\x85\\x9b');
    expect(printable('\u2028\u2029')).toBe('\\u2028\\u2029');
    expect(printable('\u202a\u202b\u202c\u202d\u202e')).toBe('\\u202a\\u202b\\u202c\\u202d\\u202e');
    expect(printable('\u2066\u2067\u2068\u2069\u200e\u200f\u061c')).toBe(
      '\\u2066\\u2067\\u2068\\u2069\\u200e\\u200f\\u061c',
    );
  });

  it('leaves printable text as it is, non-ASCII included', () => {
    for (const text of ['smtp: 550 5.1.1 <a@example.com> unknown', 'Zoë – 東京 🙂', ''])
      expect(printable(text)).toBe(text);
  });
});

describe('describeLetter', () => {
  it('prints one line per mail, escaped, and marks the mails of a batch message', () => {
    const odd = { ...mail('01A'), recipient: 'x@example.com\nfake line', kind: 'welcome\u001b[31m' };
    const single = describeLetter(
      describeDeadLetter(
        message(encodeMails([odd]), { 'x-attempts': 4, 'x-last-error': '550-a\r\n550 b\u202e' }),
      ),
    );
    expect(single).toEqual([
      '01A  shard-1  t-1  welcome\\x1b[31m  x@example.com\\nfake line  attempts=4 outage-retries=0  550-a\\r\\n550 b\\u202e',
    ]);
    const batch = describeLetter(describeDeadLetter(message(encodeMails([mail('01A'), mail('01B')]))));
    expect(batch).toEqual([
      'batch 1/2: 01A  shard-1  t-1  welcome  a@example.com  attempts=0 outage-retries=0',
      'batch 2/2: 01B  shard-1  t-1  welcome  a@example.com  attempts=0 outage-retries=0',
    ]);
    const poison = describeLetter(
      describeDeadLetter(message(Buffer.from('x'), { 'x-last-error': 'bad\u001b[0m' }, 'id\n2')),
    );
    expect(poison).toEqual(['poison  message-id=id\\n2  1 bytes  attempts=0 outage-retries=0  bad\\x1b[0m']);
  });
});
