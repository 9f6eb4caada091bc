/**
 * The email pipeline's queues on RabbitMQ, as `shardgate-ctl mail …` reads and moves them
 * (topology: src/mail/amqp-topology.ts). One connection per command, at SHARDGATE_AMQP_URL.
 *
 * Failure modes: a broker that refuses the connection, does not finish the AMQP handshake within
 * CALL_TIMEOUT_MS, or stops answering a call for as long, is an UnreachableError (exit 2) naming
 * the URL without its credentials. A broker that answers the handshake by refusing the URL's
 * credentials (ACCESS_REFUSED) or its vhost is reachable: that is a UserError (exit 1) saying what
 * it refused, again without the credentials. Every move of a message is publish → broker confirm
 * → ack of the original, so an interrupted command can leave a message twice (once in each place,
 * or twice in the dead-letter queue) but never loses one; the worker mails each outbox id once
 * (delivered_at on the shard master), so a doubled dead letter is still one mail.
 *
 * A pass over the dead-letter queue (`dead-letters`, `redrive`) first takes the lock: the
 * exclusive queue CTL_LOCK_QUEUE, which lives as long as this connection. Two passes at the same
 * time would interleave their takes from the head and their copies to the tail (a listing
 * showing some messages twice and others not at all, the queue order scrambled for good, a
 * redrive missing the mail it was asked for), so the second command is refused with a UserError.
 */
import amqp, { type ConfirmChannel, type GetMessage, type Options } from 'amqplib';
import { isVhostRefusal, VHOST_REFUSAL_REASONS } from '../src/mail/amqp-open-refusal.js';
import { DEAD_QUEUE, WORK_QUEUE } from '../src/mail/amqp-topology.js';
import { decodeMailBatch, decodeMailMessage, type MailMessage } from '../src/mail/mail-message.js';
import { LEGACY_RETRY_QUEUES, RETRY_QUEUES } from '../src/mail/retry-tiers.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { errnoReason } from './errno-reason.js';

/**
 * The lock of a pass over the dead-letter queue: a second connection declaring this exclusive
 * queue gets RESOURCE_LOCKED (405). The broker deletes it when the connection that holds it
 * closes, also when its process dies.
 */
export const CTL_LOCK_QUEUE = 'shardgate.mail.ctl-lock';

export const LOCKED_MESSAGE =
  'another shardgate-ctl mail command is working on the dead-letter queue; try again when it has finished';

/** how long the handshake and each broker call may take before the broker counts as unreachable */
export const CALL_TIMEOUT_MS = 5000;

/** headers the broker adds when it dead-letters (the retry tiers): dropped when a mail is redriven */
const BROKER_DEATH_HEADERS = [
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
];

/** `amqp://user:secret@host:port/vhost` → `amqp://host:port/vhost`: what an error line may show */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(invalid URL)';
  }
}

/** One message of the dead-letter queue, as `mail dead-letters` shows it. */
export interface DeadLetter {
  messageId: string | null;
  /** the mails it carries: one, or several for a batch message; none for a poison message */
  mails: MailMessage[];
  /** neither a mail nor a batch of mails: the worker can never send it, so it is not redriven */
  poison: boolean;
  bytes: number;
  /** attempts used (`x-attempts`) and outage retries (`x-outage-retries`), as the worker counted */
  attempts: number | null;
  outageRetries: number | null;
  lastError: string | null;
  /** how often an operator redrove it before (`x-redriven`) */
  redriven: number;
}

function count(value: unknown): number | null {
  const n = Number(value ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : null;
}

export function describeDeadLetter(msg: GetMessage): DeadLetter {
  const single = decodeMailMessage(msg.content);
  const mails = single ? [single] : (decodeMailBatch(msg.content) ?? []);
  const h = msg.properties.headers ?? {};
  return {
    messageId: typeof msg.properties.messageId === 'string' ? msg.properties.messageId : null,
    mails,
    poison: mails.length === 0,
    bytes: msg.content.length,
    attempts: count(h['x-attempts']),
    outageRetries: count(h['x-outage-retries']),
    lastError: typeof h['x-last-error'] === 'string' ? h['x-last-error'] : null,
    redriven: count(h['x-redriven']) ?? 0,
  };
}

export interface QueueDepth {
  queue: string;
  /** null: the queue is not declared (no email worker has connected to this broker yet) */
  messages: number | null;
  consumers: number | null;
  /** a retry queue of an older version, deleted by the email worker once it is empty */
  retiring?: true;
}

/** What a command does with one dead letter it took from the head of the queue. */
export type Verdict = 'requeue' | 'redrive';

/** What a pass did: how many messages it took, of how many the queue held when it started. */
export interface PassResult {
  taken: number;
  total: number;
}

export class MailQueues {
  private locked = false;

  private constructor(
    private readonly conn: amqp.ChannelModel,
    private readonly ch: ConfirmChannel,
    private readonly where: string,
  ) {}

  static async open(url: string): Promise<MailQueues> {
    const where = redactUrl(url);
    let conn: amqp.ChannelModel | undefined;
    try {
      conn = await deadline(amqp.connect(url, { timeout: CALL_TIMEOUT_MS }), 'connect');
      // a broken connection must not crash the process: each call below reports its own failure
      conn.on('error', () => {});
      const ch = await deadline(conn.createConfirmChannel(), 'open a channel');
      ch.on('error', () => {});
      return new MailQueues(conn, ch, where);
    } catch (error) {
      await conn?.close().catch(() => {});
      throw brokerRefusal(where, error) ?? brokerUnreachable(where, error);
    }
  }

  /**
   * Depth of the work queue, each retry tier and the dead-letter queue, then of every retry
   * queue of an older version that still exists (`retiring: true`; LEGACY_RETRY_QUEUES): the
   * mails in those are not lost, they reach the work queue when their delay runs out.
   */
  async depths(): Promise<QueueDepth[]> {
    const out: QueueDepth[] = [];
    for (const queue of [WORK_QUEUE, ...RETRY_QUEUES, DEAD_QUEUE])
      out.push({ queue, ...(await this.check(queue)) });
    for (const queue of LEGACY_RETRY_QUEUES) {
      const depth = await this.check(queue);
      if (depth.messages !== null) out.push({ queue, ...depth, retiring: true });
    }
    return out;
  }

  /**
   * Take the lock of the dead-letter queue (CTL_LOCK_QUEUE) for as long as this connection is
   * open; a UserError if another command holds it. `pass` takes it itself.
   */
  async lock(): Promise<void> {
    if (this.locked) return;
    // RESOURCE_LOCKED closes the channel it was asked on: ask on a channel of its own
    const ch = await this.call(this.conn.createChannel(), 'open a channel');
    ch.on('error', () => {});
    try {
      await deadline(
        ch.assertQueue(CTL_LOCK_QUEUE, { exclusive: true, autoDelete: true, durable: false }),
        `declare ${CTL_LOCK_QUEUE}`,
      );
    } catch (error) {
      if ((error as { code?: number }).code === 405) throw new UserError(LOCKED_MESSAGE);
      throw brokerUnreachable(this.where, error);
    }
    // the queue belongs to the connection, not to the channel
    await ch.close().catch(() => {});
    this.locked = true;
  }

  /**
   * Take every message that is in the dead-letter queue now off its head, once, oldest first, and
   * let `decide` say where it goes: `requeue` puts it back at the tail, `redrive` publishes it to
   * the work queue with fresh attempt counts. A whole pass leaves the messages it put back in
   * their order. `stop` ends the pass early, but only while no message has been put back: once
   * one has, the pass goes on to the end, so that the ones not taken yet do not end up in front
   * of it. What was not taken stays where it is. Holds the lock (see `lock`) from the start.
   */
  async pass(
    decide: (letter: DeadLetter) => Verdict,
    stop: () => boolean = () => false,
    chunk = 200,
  ): Promise<PassResult> {
    await this.lock();
    const total = (await this.check(DEAD_QUEUE)).messages ?? 0;
    let taken = 0;
    let requeued = 0;
    const stopping = () => requeued === 0 && stop();
    while (taken < total && !stopping()) {
      const batch: GetMessage[] = [];
      while (batch.length < chunk && taken + batch.length < total && !stopping()) {
        const msg = await this.call(this.ch.get(DEAD_QUEUE, { noAck: false }), 'get');
        if (!msg) break;
        batch.push(msg);
        // decide now, so that `stop` sees this message counted
        const verdict = decide(describeDeadLetter(msg));
        if (verdict === 'redrive') this.publishToWork(msg);
        else {
          this.requeue(msg);
          requeued++;
        }
      }
      if (batch.length === 0) break;
      await this.call(this.ch.waitForConfirms(), 'confirm');
      // only now are the copies safe: drop the originals
      this.ch.ack(batch.at(-1)!, true);
      taken += batch.length;
    }
    return { taken, total };
  }

  async close(): Promise<void> {
    await this.ch.close().catch(() => {});
    await this.conn.close().catch(() => {});
  }

  private requeue(msg: GetMessage): void {
    // the default exchange routes by queue name: the copy goes to this queue only, not to
    // whatever else an operator may have bound to the dead-letter exchange
    this.ch.publish('', DEAD_QUEUE, msg.content, propsOf(msg, msg.properties.headers ?? {}));
  }

  private publishToWork(msg: GetMessage): void {
    const headers: Record<string, unknown> = { ...(msg.properties.headers ?? {}) };
    for (const name of BROKER_DEATH_HEADERS) delete headers[name];
    headers['x-attempts'] = 0;
    headers['x-outage-retries'] = 0;
    headers['x-redriven'] = (count(headers['x-redriven']) ?? 0) + 1;
    this.ch.publish('', WORK_QUEUE, msg.content, propsOf(msg, headers));
  }

  private async check(queue: string): Promise<Omit<QueueDepth, 'queue'>> {
    // a missing queue closes the channel it was asked on (404): ask on a channel of its own
    const ch = await this.call(this.conn.createChannel(), 'open a channel');
    ch.on('error', () => {});
    try {
      const q = await this.call(ch.checkQueue(queue), `check ${queue}`);
      await ch.close().catch(() => {});
      return { messages: q.messageCount, consumers: q.consumerCount };
    } catch (error) {
      if ((error as { code?: number }).code === 404) return { messages: null, consumers: null };
      throw error;
    }
  }

  private call<T>(p: Promise<T>, what: string): Promise<T> {
    return deadline(p, what).catch((error) => {
      if ((error as { code?: number }).code === 404) throw error;
      throw brokerUnreachable(this.where, error);
    });
  }
}

function propsOf(msg: GetMessage, headers: Record<string, unknown>): Options.Publish {
  return {
    persistent: true,
    headers,
    ...(msg.properties.messageId ? { messageId: msg.properties.messageId } : {}),
    ...(msg.properties.contentType ? { contentType: msg.properties.contentType } : {}),
  };
}

function deadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer to ${what} within ${CALL_TIMEOUT_MS / 1000} s`)),
      CALL_TIMEOUT_MS,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * The broker's answer to a handshake that it refused, as a UserError; undefined for any other
 * failure. amqplib words these as `Handshake terminated by server: 403 (ACCESS-REFUSED) …` and,
 * for a vhost refused (amqp-open-refusal.ts), `Expected ConnectionOpenOk; got <ConnectionClose …>`.
 */
export function brokerRefusal(where: string, error: unknown): UserError | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (/\bACCESS[-_]REFUSED\b/.test(message)) {
    return new UserError(
      `rabbitmq at ${where} refused the credentials of SHARDGATE_AMQP_URL (ACCESS_REFUSED)`,
    );
  }
  if (isVhostRefusal(error)) {
    return new UserError(
      `rabbitmq at ${where} refused to open the vhost of SHARDGATE_AMQP_URL (${VHOST_REFUSAL_REASONS})`,
    );
  }
  return undefined;
}

/**
 * The broker could not be reached (exit 2): one line, the reason a socket error's errno in the
 * words the etcd line uses (errno-reason.ts: `connection refused`, not Node's
 * `connect ECONNREFUSED 127.0.0.1:5672`), else the error's first line without credentials.
 */
export function brokerUnreachable(where: string, error: unknown): UnreachableError {
  if (error instanceof UnreachableError) return error;
  const errno = errnoReason(error);
  if (errno) return new UnreachableError(`rabbitmq unreachable at ${where}: ${errno}`);
  const message = error instanceof Error ? error.message : String(error);
  // amqplib may quote the URL it was given: never let the credentials through
  const clean = message.split('\n')[0]!.replace(/amqps?:\/\/[^\s@/]*@/g, 'amqp://');
  return new UnreachableError(`rabbitmq unreachable at ${where}: ${clean || 'connection failed'}`);
}
