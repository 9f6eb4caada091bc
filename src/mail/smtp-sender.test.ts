/**
 * SmtpSender's sessions against an in-process smtp-server (the library the stack's sink runs):
 * held mails wait for their dot, batches wait for free sessions first come first served, and
 * every failure gives its session back. What the stack's real sink and a killed process do is in
 * test/smtp-hold.test.ts.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { type HeldMail, type OutgoingMail, SmtpSender } from './smtp-sender.js';

interface Sink {
  url: string;
  received: string[];
  close(): Promise<void>;
}

/**
 * an SMTP server on an ephemeral port; recipients in `refuse` are refused at RCPT TO; the final
 * dot is answered `answerDotAfterMs` after it came (a server that is slow to take the mail)
 */
async function sink({ refuse = new Set<string>(), answerDotAfterMs = 0 } = {}): Promise<Sink> {
  const received: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    disableReverseLookup: true,
    onRcptTo(address, _session, callback) {
      if (refuse.has(address.address))
        return callback(Object.assign(new Error('no such user'), { responseCode: 550 }));
      callback();
    },
    onData(stream, session, callback) {
      stream.on('data', () => {});
      stream.on('end', () => {
        setTimeout(() => {
          received.push(...session.envelope.rcptTo.map((r) => r.address));
          callback();
        }, answerDotAfterMs);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const mail = (to: string): OutgoingMail => ({
  to,
  outboxId: to.split('@')[0]!.toUpperCase(),
  mail: { subject: 'hi', text: 'text', html: '<p>html</p>' },
});
const tick = (ms = 50) => new Promise((r) => setTimeout(r, ms));

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

function sender(url: string, opts: Partial<ConstructorParameters<typeof SmtpSender>[0]> = {}): SmtpSender {
  const s = new SmtpSender({ url, from: 'no-reply@example.com', ...opts });
  cleanup.push(() => s.close());
  return s;
}

describe('SmtpSender', () => {
  it('holds mails until release; a second batch waits for free sessions', async () => {
    const server = await sink();
    cleanup.push(() => server.close());
    const s = sender(server.url, { maxSessions: 2 });
    const first = (await s.hold([mail('a@x.test'), mail('b@x.test')])) as HeldMail[];
    await tick();
    expect(server.received).toEqual([]);

    let secondDone = false;
    const second = s.hold([mail('c@x.test')]).then((r) => {
      secondDone = true;
      return r as HeldMail[];
    });
    await tick();
    expect(secondDone).toBe(false); // both sessions are held

    const released = first[0]!.release();
    await released.written;
    await released.accepted;
    const [c] = await second;
    expect(server.received).toEqual(['a@x.test']);
    first[1]!.cancel();
    await c!.release().accepted;
    await tick();
    expect(server.received.sort()).toEqual(['a@x.test', 'c@x.test']);
  });

  it('reports a refused recipient as an error and gives its session back', async () => {
    const server = await sink({ refuse: new Set(['nobody@x.test']) });
    cleanup.push(() => server.close());
    const s = sender(server.url, { maxSessions: 1 });
    const [refused] = await s.hold([mail('nobody@x.test')]);
    expect(refused).toBeInstanceOf(Error);
    expect(String(refused)).toMatch(/550|no such user/);
    const [ok] = (await s.hold([mail('d@x.test')])) as HeldMail[];
    await ok!.release().accepted;
    expect(server.received).toEqual(['d@x.test']);
  });

  it('a server that never greets fails the mail after the greeting timeout and frees the session', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((r) => silent.close(r)));
    cleanup.push(() => {
      silent.unref();
    });
    const { port } = silent.address() as AddressInfo;
    const s = sender(`smtp://127.0.0.1:${port}`, { maxSessions: 1, timeoutsMs: { greeting: 150 } });
    const [a] = await s.hold([mail('e@x.test')]);
    expect(a).toBeInstanceOf(Error);
    // the one session was given back: the next call fails the same way instead of waiting forever
    const [b] = await s.hold([mail('f@x.test')]);
    expect(b).toBeInstanceOf(Error);
  });

  it('a held mail whose dot is not released in time is dropped by the socket timeout', async () => {
    const server = await sink();
    cleanup.push(() => server.close());
    const s = sender(server.url, { maxSessions: 1, timeoutsMs: { socket: 200 } });
    const [held] = (await s.hold([mail('g@x.test')])) as HeldMail[];
    await tick(400);
    const late = held!.release();
    await expect(late.accepted).rejects.toThrow();
    await tick();
    expect(server.received).toEqual([]);
    const [next] = (await s.hold([mail('h@x.test')])) as HeldMail[];
    await next!.release().accepted;
    expect(server.received).toEqual(['h@x.test']);
  });

  it('waits for the answer to the final dot past the socket timeout: a slow server that takes the mail gets it once', async () => {
    const slow = await sink({ answerDotAfterMs: 600 });
    cleanup.push(() => slow.close());
    const s = sender(slow.url, { maxSessions: 1, timeoutsMs: { socket: 200, dotAnswer: 2000 } });
    const [held] = (await s.hold([mail('k@x.test')])) as HeldMail[];
    await expect(held!.release().accepted).resolves.toBeUndefined();
    expect(slow.received).toEqual(['k@x.test']);
    // the session is reused with the short timeout again: a held mail not released is dropped
    const [next] = (await s.hold([mail('l@x.test')])) as HeldMail[];
    await tick(400);
    await expect(next!.release().accepted).rejects.toThrow();
  });

  it('gives up on the answer to the final dot after dotAnswer', async () => {
    const silent = await sink({ answerDotAfterMs: 5000 });
    cleanup.push(() => silent.close());
    const s = sender(silent.url, { maxSessions: 1, timeoutsMs: { socket: 200, dotAnswer: 500 } });
    const [held] = (await s.hold([mail('m@x.test')])) as HeldMail[];
    const t0 = Date.now();
    await expect(held!.release().accepted).rejects.toThrow(/Timeout/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
  });

  it('refuses more mails in one call than it has sessions', async () => {
    const s = sender('smtp://127.0.0.1:9', { maxSessions: 1 });
    await expect(s.hold([mail('i@x.test'), mail('j@x.test')])).rejects.toThrow(RangeError);
  });
});
