/**
 * SMTP through nodemailer to SHARDGATE_SMTP_URL, over a small pool of persistent SMTP sessions
 * (nodemailer `pool: true`): a mail costs MAIL/RCPT/DATA on an open session instead of a new TCP
 * connection + greeting + EHLO + QUIT. Sends beyond `maxConnections` wait in nodemailer's queue.
 *
 * Failure modes:
 * - short timeouts: a frozen server must not hold a consumer slot for nodemailer's defaults
 *   (2 min connect, 10 min idle). `socketTimeout` also closes a pooled session after that long
 *   idle; the next mail opens a new one.
 * - a pooled session that breaks while a mail is on it fails that send (`maxRequeues: 0`):
 *   nodemailer would otherwise re-queue it on a new session on its own — a second copy when the
 *   server had already taken the DATA, and a send that outlives the caller's transaction. The
 *   caller's retry path owns retries.
 * - Nagle's algorithm is off on the sessions (`getSocket`, nodemailer's documented hook for
 *   custom sockets): on a long-lived session the last small write of a mail (the terminating
 *   dot) otherwise waits for the server's delayed ACK, ~40 ms per mail on Linux. Besides the
 *   latency, the mail then sits complete in the kernel's send buffer, which still delivers it
 *   when the worker dies — a mail the server gets but whose delivery was never recorded.
 * - nodemailer errors become DependencyError('smtp'), here and nowhere else.
 *
 * The SMTP `Message-ID` is derived from the outbox id, so a receiving system can dedup too.
 */
import { connect, type Socket } from 'node:net';
import nodemailer, { type Transporter } from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import { DependencyError } from '../resilience/errors.js';
import type { RenderedMail } from './mail-templates.js';

export interface SmtpSenderOptions {
  url: string;
  from: string;
  /** persistent SMTP sessions at most (nodemailer's default is 5) */
  maxConnections?: number;
  /** mails per session before it is replaced */
  maxMessages?: number;
}

export class SmtpSender {
  private readonly transport: Transporter;
  private readonly from: string;

  constructor({ url, from, maxConnections = 4, maxMessages = 10_000 }: SmtpSenderOptions) {
    this.from = from;
    const connectionTimeout = 3000;
    // The pool transport is built here rather than by createTransport(url, …): createTransport
    // takes every transport option from the URL alone when given one (the second argument is
    // message defaults), while SMTPPool merges `url` over the options below.
    // `maxRequeues` is a nodemailer option missing from @types/nodemailer.
    const options: SMTPPool.Options & { maxRequeues: number } = {
      url,
      pool: true,
      maxConnections,
      maxMessages,
      maxRequeues: 0,
      connectionTimeout,
      greetingTimeout: 3000,
      socketTimeout: 5000,
      getSocket: (opts, callback) => connectNoDelay(opts, connectionTimeout, callback),
    };
    this.transport = nodemailer.createTransport(new SMTPPool(options));
  }

  async send({ to, outboxId, mail }: { to: string; outboxId: string; mail: RenderedMail }): Promise<void> {
    try {
      await this.transport.sendMail({
        from: this.from,
        to,
        subject: mail.subject,
        text: mail.text,
        html: mail.html,
        messageId: `<${outboxId}@shardgate.local>`,
      });
    } catch (error) {
      throw new DependencyError('smtp', `smtp: ${(error as Error).message}`, { cause: error });
    }
  }

  /** closes idle sessions at once, busy ones after their current mail */
  close(): void {
    this.transport.close();
  }
}

/**
 * A connected TCP socket without Nagle's algorithm, handed to nodemailer as `connection` (it
 * upgrades it to TLS itself for `smtps:`). Host and port default as in nodemailer's own
 * connect: localhost, 465 when secure, else 587.
 */
function connectNoDelay(
  opts: { host?: string | undefined; port?: number | undefined; secure?: boolean | undefined },
  timeoutMs: number,
  callback: (err: Error | null, socketOptions?: { connection: Socket }) => void,
): void {
  let settled = false;
  const socket = connect({
    host: opts.host || 'localhost',
    port: Number(opts.port) || (opts.secure ? 465 : 587),
    noDelay: true,
  });
  const fail = (error: Error) => {
    if (settled) return; // after the hand-over nodemailer's own listeners report errors
    settled = true;
    clearTimeout(timer);
    socket.destroy();
    callback(error);
  };
  const timer = setTimeout(
    () => fail(Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' })),
    timeoutMs,
  );
  // stays attached: an error between the hand-over and nodemailer's listeners must not crash
  socket.on('error', fail);
  socket.once('connect', () => {
    settled = true;
    clearTimeout(timer);
    callback(null, { connection: socket });
  });
}
