/**
 * SMTP through nodemailer's SMTPConnection to SHARDGATE_SMTP_URL, in two steps per mail so the
 * caller can record a delivery in the same instant the mail becomes final:
 *
 * 1. `hold(mails)` takes one persistent SMTP session per mail (all of them at once, first come
 *    first served, so batches waiting for sessions never deadlock each other), sends
 *    MAIL FROM / RCPT TO / DATA and the whole message — everything but the final `.` line — and
 *    resolves per mail with a HeldMail once the server said 354 and has the body. The server
 *    keeps nothing of a mail until its final dot: a session closed before it (cancel, a crash,
 *    a timeout) discards the mail.
 * 2. `HeldMail.release()` writes the final dot. `written` resolves once the dot left the process
 *    (it is in the kernel's send buffer, which still delivers it if the worker dies a moment
 *    later); `accepted` resolves on the server's 250 and rejects on a refusal or when the
 *    session broke first — then the mail may or may not have arrived.
 *
 * Why: the outbox store commits `delivered_at` right after the dots are written
 * (OutboxStore.deliverBatch). A crash before that COMMIT leaves mails the server got but the
 * database does not know of, which are sent again on the retry; holding the dot shrinks that
 * window from "until the server answered and the batch committed" to one turn of the event loop.
 * (A COMMIT that fails while the worker lives is no such window: the batcher remembers the mails
 * the server accepted and the retry only records them, delivery-batcher.ts.)
 *
 * Failure modes:
 * - short timeouts before the final dot: a frozen server fails a mail after `socketTimeout`
 *   (5 s), and a held mail whose dot is not released within it is discarded by the timeout
 *   closing the session;
 * - a long one after it: the answer to the final dot is awaited for `dotAnswer` (10 minutes, as
 *   RFC 5321 §4.5.3.2.6 asks), because a server that got the dot may have taken the mail: a
 *   shorter wait gives up on mails the server then accepts, and the retry sends them twice (an
 *   outside check froze the sink for 25 s: 16 mails arrived twice with the 5 s timeout). A session
 *   that breaks (reset, closed) still fails the mail at once;
 * - any error on a session closes it (nodemailer's pool does the same); the next mail opens a
 *   new one. Sessions idle for `idleMs` are closed with QUIT;
 * - Nagle's algorithm is off (`noDelay`): a small final write would otherwise wait for the
 *   server's delayed ACK, ~40 ms per mail on Linux;
 * - nodemailer errors become DependencyError('smtp'), here and nowhere else.
 *
 * Written by hand on top of SMTPConnection (nodemailer's documented low-level client): nodemailer's
 * pooled transport pipes a message stream into its buffers before the server said 354, so it
 * cannot tell when a held mail reached the DATA phase. The message itself is the one nodemailer's
 * MailComposer builds, laid out by mime-message.ts at a fifteenth of the CPU, with a `Message-ID`
 * derived from the outbox id.
 */
import { connect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import shared from 'nodemailer/lib/shared/index.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { DependencyError } from '../resilience/errors.js';
import type { RenderedMail } from './mail-templates.js';
import { composeMail } from './mime-message.js';

export interface SmtpSenderOptions {
  url: string;
  from: string;
  /** persistent SMTP sessions at most, and so the most mails `hold` takes in one call */
  maxSessions?: number;
  /** mails per session before it is replaced */
  maxMessages?: number;
  /** an idle session is closed after this long */
  idleMs?: number;
  /**
   * TCP connect, then the server's greeting, then any one answer of the server before the final
   * dot (`socket`), and the answer to the final dot (`dotAnswer`)
   */
  timeoutsMs?: { connect?: number; greeting?: number; socket?: number; dotAnswer?: number };
}

export interface OutgoingMail {
  to: string;
  outboxId: string;
  mail: RenderedMail;
}

export interface ReleasedMail {
  /** the final dot was handed to the kernel; rejects when the session broke before */
  written: Promise<void>;
  /** the server answered 250; rejects (DependencyError 'smtp') on a refusal or a broken session */
  accepted: Promise<void>;
}

export interface HeldMail {
  /** write the final dot; call once */
  release(): ReleasedMail;
  /** drop the mail without its final dot (its session is closed); nothing after `release` */
  cancel(): void;
}

export interface MailSender {
  readonly maxSessions: number;
  /** one entry per mail, in order: a HeldMail, or the error that stopped it before the dot */
  hold(mails: readonly OutgoingMail[]): Promise<(HeldMail | Error)[]>;
}

function smtpError(error: unknown): DependencyError {
  if (error instanceof DependencyError) return error;
  return new DependencyError('smtp', `smtp: ${(error as Error).message}`, { cause: error });
}

/**
 * Sets the inactivity timeout SMTPConnection watches (its 'timeout' handler fails the session):
 * on the socket it reads, which is the one it was given unless it upgraded it with STARTTLS.
 * `_socket` is SMTPConnection's own field (nodemailer 7), read here only.
 */
function inactivity(session: Session, ms: number): void {
  ((session.conn as unknown as { _socket?: Socket })._socket ?? session.socket).setTimeout(ms);
}

/** one SMTP connection; `fail` ends the operation in progress when the connection breaks */
interface Session {
  conn: SMTPConnection;
  socket: Socket;
  messages: number;
  broken: boolean;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
  fail: ((error: Error) => void) | undefined;
}

export class SmtpSender implements MailSender {
  readonly maxSessions: number;
  private readonly from: string;
  private readonly url: ReturnType<typeof shared.parseConnectionUrl>;
  private readonly maxMessages: number;
  private readonly idleMs: number;
  private readonly timeouts: { connect: number; greeting: number; socket: number; dotAnswer: number };
  private readonly idle: Session[] = [];
  private busy = 0;
  private readonly waiting: { n: number; go: () => void }[] = [];
  private closed = false;

  constructor({
    url,
    from,
    maxSessions = 8,
    maxMessages = 10_000,
    idleMs = 4000,
    timeoutsMs,
  }: SmtpSenderOptions) {
    this.from = from;
    this.timeouts = { connect: 3000, greeting: 3000, socket: 5000, dotAnswer: 600_000, ...timeoutsMs };
    this.url = shared.parseConnectionUrl(url);
    this.maxSessions = Math.max(1, maxSessions);
    this.maxMessages = maxMessages;
    this.idleMs = idleMs;
  }

  async hold(mails: readonly OutgoingMail[]): Promise<(HeldMail | Error)[]> {
    if (mails.length === 0) return [];
    if (mails.length > this.maxSessions)
      throw new RangeError(`hold takes at most ${this.maxSessions} mails at once, got ${mails.length}`);
    if (this.closed) return mails.map(() => smtpError(new Error('the SMTP sender is closed')));
    const messages = await Promise.all(mails.map((m) => this.compose(m).catch((e: unknown) => e as Error)));
    await this.acquire(mails.length);
    return Promise.all(
      mails.map(async (m, i) => {
        const message = messages[i]!;
        if (message instanceof Error) {
          this.releasePermit();
          return smtpError(message);
        }
        let session: Session;
        try {
          session = await this.session();
        } catch (error) {
          this.releasePermit();
          return smtpError(error);
        }
        return this.holdOn(session, m.to, message).catch((e: unknown) => smtpError(e));
      }),
    );
  }

  /** closes idle sessions at once, busy ones after their current mail */
  close(): void {
    this.closed = true;
    for (const s of this.idle.splice(0)) this.retire(s, true);
  }

  private compose({ to, outboxId, mail }: OutgoingMail): Promise<Buffer> {
    return composeMail({ from: this.from, to, ...mail, date: new Date() }, outboxId);
  }

  /**
   * MAIL FROM, RCPT TO, DATA, then the body; resolves once the body is being handed to the
   * socket and everything but the final dot is out. The session's permit is given back when the
   * mail is done (accepted, failed or cancelled).
   */
  private holdOn(session: Session, to: string, message: Buffer): Promise<HeldMail> {
    return new Promise<HeldMail>((resolveHold, rejectHold) => {
      type Stage = 'envelope' | 'held' | 'released' | 'done';
      let stage: Stage = 'envelope';
      let pushed = false;
      let brokenBy: Error | undefined;
      let onWritten: { resolve: () => void; reject: (e: Error) => void } | undefined;
      let onAnswer: { resolve: () => void; reject: (e: Error) => void } | undefined;

      const finish = (reusable: boolean) => {
        stage = 'done';
        session.fail = undefined;
        this.giveBack(session, reusable);
      };
      const fail = (error: Error) => {
        if (stage === 'done') return;
        const was = stage;
        brokenBy = smtpError(error);
        finish(false);
        if (was === 'envelope') rejectHold(brokenBy);
        onWritten?.reject(brokenBy);
        onAnswer?.reject(brokenBy);
      };
      session.fail = fail;

      const body = new Readable({
        read() {
          // first read: the server said 354 and nodemailer pipes the message into the socket
          if (!pushed) {
            pushed = true;
            this.push(message);
          } else if (stage === 'envelope') {
            // asked for more: the body went on towards the socket; only the final dot is left
            stage = 'held';
            resolveHold(held);
          }
        },
      });
      body.once('end', () => {
        // the pipe ends nodemailer's data stream now, which writes the final dot on the next
        // ticks; after them the dot is in the kernel unless the socket is backed up
        setImmediate(() => {
          if (brokenBy) return;
          if (session.socket.writableLength === 0) onWritten?.resolve();
          else session.socket.once('drain', () => onWritten?.resolve());
        });
      });

      const held: HeldMail = {
        release: () => {
          if (stage !== 'held') {
            const error = brokenBy ?? smtpError(new Error(`a held mail released twice or after cancel`));
            const failed = Promise.reject(error);
            failed.catch(() => {}); // a caller may await only one of the two
            return { written: failed, accepted: failed };
          }
          stage = 'released';
          const written = new Promise<void>((resolve, reject) => {
            onWritten = { resolve, reject };
          });
          const accepted = new Promise<void>((resolve, reject) => {
            onAnswer = { resolve, reject };
          });
          // a caller that awaits only one of them must not see an unhandled rejection
          written.catch(() => {});
          accepted.catch(() => {});
          // the server may take its time to answer the dot (above): wait for it that long
          inactivity(session, this.timeouts.dotAnswer);
          body.push(null);
          return { written, accepted };
        },
        cancel: () => {
          if (stage !== 'held') return;
          fail(new Error('mail cancelled before its final dot'));
        },
      };

      session.conn.send({ from: this.from, to: [to] }, body, (error) => {
        if (error) return fail(error);
        if (stage === 'done') return;
        const wasReleased = stage === 'released';
        // the next mail on this session waits for each answer as long as any other
        inactivity(session, this.timeouts.socket);
        finish(true);
        // a 250 without a release cannot happen (the body never ended); treat it as a failure
        if (wasReleased) {
          onWritten?.resolve(); // the 250 answers the dot: it was written, whatever the check says
          onAnswer?.resolve();
        } else rejectHold(smtpError(new Error('the server answered before the final dot')));
      });
    });
  }

  /** wait until `n` sessions may be in use at once more (first come, first served) */
  private acquire(n: number): Promise<void> {
    if (this.waiting.length === 0 && this.busy + n <= this.maxSessions) {
      this.busy += n;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiting.push({
        n,
        go: () => {
          this.busy += n;
          resolve();
        },
      });
    });
  }

  private releasePermit(): void {
    this.busy--;
    while (this.waiting.length > 0 && this.busy + this.waiting[0]!.n <= this.maxSessions) {
      this.waiting.shift()!.go();
    }
  }

  private giveBack(session: Session, reusable: boolean): void {
    session.messages++;
    if (reusable && !session.broken && !this.closed && session.messages < this.maxMessages) {
      session.idleTimer = setTimeout(() => {
        const i = this.idle.indexOf(session);
        if (i >= 0) this.idle.splice(i, 1);
        this.retire(session, true);
      }, this.idleMs);
      session.idleTimer.unref();
      this.idle.push(session);
    } else {
      this.retire(session, reusable && !session.broken);
    }
    this.releasePermit();
  }

  /** an idle session that still works, or a new one */
  private async session(): Promise<Session> {
    for (let s = this.idle.pop(); s; s = this.idle.pop()) {
      clearTimeout(s.idleTimer);
      if (!s.broken) return s;
    }
    return this.open();
  }

  private async open(): Promise<Session> {
    const { host, port, secure } = this.url;
    const socket = await connectNoDelay({ host, port, secure }, this.timeouts.connect);
    const conn = new SMTPConnection({
      ...this.url,
      connection: socket,
      connectionTimeout: this.timeouts.connect,
      greetingTimeout: this.timeouts.greeting,
      socketTimeout: this.timeouts.socket,
    });
    const session: Session = {
      conn,
      socket,
      messages: 0,
      broken: false,
      idleTimer: undefined,
      fail: undefined,
    };
    const broke = (error: Error) => {
      session.broken = true;
      session.fail?.(error);
    };
    conn.on('error', broke);
    conn.on('end', () => broke(new Error('SMTP connection closed')));
    // connect() calls back only on success, a failure (greeting timeout, refused) is an 'error'
    // event: `broke` rejects through session.fail
    const step = (run: (done: (error?: Error | null) => void) => void) =>
      new Promise<void>((resolve, reject) => {
        session.fail = reject;
        run((error) => (error ? reject(error) : resolve()));
      });
    try {
      await step((done) => conn.connect(() => done()));
      // user and password from the URL (smtp://user:pass@host), as nodemailer's transports do
      const auth = this.url.auth as { user?: string; pass?: string } | undefined;
      if (auth?.user) {
        const credentials = { user: auth.user, pass: auth.pass ?? '' };
        await step((done) => conn.login(credentials, done));
      }
    } catch (error) {
      session.broken = true;
      socket.destroy();
      throw error;
    } finally {
      session.fail = undefined;
    }
    return session;
  }

  /**
   * `polite`: between two mails, QUIT. Otherwise the socket is destroyed at once: in the middle
   * of DATA a QUIT would be read as part of the message, and without its final dot the server
   * discards what it got.
   */
  private retire(session: Session, polite: boolean): void {
    clearTimeout(session.idleTimer);
    session.broken = true;
    if (!polite) {
      session.socket.destroy();
      return;
    }
    try {
      session.conn.quit();
    } catch {
      session.socket.destroy();
    }
  }
}

/**
 * A connected TCP socket without Nagle's algorithm, handed to SMTPConnection as `connection`
 * (it upgrades it to TLS itself for `smtps:`). Host and port default as in nodemailer's own
 * connect: localhost, 465 when secure, else 587.
 */
function connectNoDelay(
  opts: { host?: string | undefined; port?: number | undefined; secure?: boolean | undefined },
  timeoutMs: number,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const socket = connect({
      host: opts.host || 'localhost',
      port: Number(opts.port) || (opts.secure ? 465 : 587),
      noDelay: true,
    });
    const fail = (error: Error) => {
      if (settled) return; // after the hand-over SMTPConnection's own listeners report errors
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(Object.assign(new Error('Connection timeout'), { code: 'ETIMEDOUT' })),
      timeoutMs,
    );
    // stays attached: an error between the hand-over and SMTPConnection's listeners must not crash
    socket.on('error', fail);
    socket.once('connect', () => {
      settled = true;
      clearTimeout(timer);
      resolve(socket);
    });
  });
}
