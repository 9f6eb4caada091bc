/**
 * SMTP through nodemailer to SHARDGATE_SMTP_URL. Short timeouts (a frozen server must not hold a
 * consumer slot for nodemailer's 30 s defaults); nodemailer errors become DependencyError('smtp').
 * The SMTP `Message-ID` is derived from the outbox id, so a receiving system can dedup too.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import { DependencyError } from '../resilience/errors.js';
import type { RenderedMail } from './mail-templates.js';

export class SmtpSender {
  private readonly transport: Transporter;

  constructor(private readonly opts: { url: string; from: string }) {
    this.transport = nodemailer.createTransport(opts.url, {
      connectionTimeout: 3000,
      greetingTimeout: 3000,
      socketTimeout: 5000,
    });
  }

  async send({ to, outboxId, mail }: { to: string; outboxId: string; mail: RenderedMail }): Promise<void> {
    try {
      await this.transport.sendMail({
        from: this.opts.from,
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

  close(): void {
    this.transport.close();
  }
}
