/**
 * One AMQP connection with a confirm channel, (re)opened on demand through the `rabbitmq`
 * breaker. A lost connection is dropped and the next `channel()` call reconnects (and
 * re-declares the topology); while the breaker is open, calls fail at once with
 * BreakerOpenError. amqplib errors become DependencyError('rabbitmq') here and nowhere else.
 * A connection that opens but cannot give its channels or declare the topology is closed before
 * the failure is passed on (one connection per retry would leak otherwise).
 *
 * A broker in a resource alarm (memory or disk) sends `connection.blocked` and stops reading the
 * socket of a connection once it publishes: its publishes wait for confirms that do not come, and
 * nothing else sent on it (acks, cancels, queue checks, a close frame) is read either. So the
 * email worker publishes the outbox on a connection of its own, and failed mails' retries on
 * another (email-worker.ts). While blocked, `blockedForMs()` says so (the relay then claims
 * nothing, as while the breaker is open) and `run()` refuses a publish-side call at once, without
 * counting it against the breaker. The
 * broker says so once a publish arrives: that publish times out, and its connection is kept for
 * it to be confirmed after. Before (an outside check), every publish timed out after 2 s, its
 * connection was dropped and a new one opened: one more blocked connection and consumer each
 * 2.5 s, none closing until the alarm ended, and the backlog published again once per connection.
 * A connection dropped is closed within CLOSE_WITHIN_MS, else its socket is destroyed.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { CallTimeoutError, DependencyError } from '../resilience/errors.js';
import { isVhostRefusal, VHOST_REFUSAL_REASONS } from './amqp-open-refusal.js';
import { declareMailTopology } from './amqp-topology.js';

/** how long a dropped connection's close may take before its socket is destroyed */
const CLOSE_WITHIN_MS = 2000;
/**
 * The heartbeat asked of the broker: a broker or link gone silent is noticed after about two of
 * them, and the connection's waiting publishes fail (their mails are then retried or redelivered)
 */
const HEARTBEAT_SECONDS = 5;

/** what a connection's close with `message` says in the log */
function closeLine(message: string): string {
  if (/^Connection closed: /.test(message)) return 'amqp connection closed by the broker; reconnecting';
  if (/heartbeat timeout/i.test(message))
    return 'amqp connection lost: the broker sent nothing within two heartbeats (frozen or unreachable); reconnecting';
  return 'amqp connection lost: the socket closed without the broker closing it (the network, or a broker killed); reconnecting';
}
/** what blockedForMs() answers while the broker blocks publishing: the relay looks again then */
const BLOCKED_RECHECK_MS = 1000;

/** how often a connection is tried beside the open rabbitmq breaker (run) */
export const BESIDE_BREAKER_EVERY_MS = 2000;

export class AmqpConnection {
  private model: ChannelModel | undefined;
  /** the broker's reason while it blocks this connection's publishing, and since when (performance.now) */
  private blocked: { reason: string; since: number } | undefined;
  private confirm: ConfirmChannel | undefined;
  /** when run() last tried a connection beside the open breaker (performance.now) */
  private triedBesideAt = Number.NEGATIVE_INFINITY;
  /** the connection's second confirm channel: `onChannel` listeners get it too */
  private side: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  private closed = false;
  /** "could not be opened", at most once per 30 s while it lasts */
  private readonly openFailures: WarnLimiter;
  private readonly listeners = new Set<(ch: ConfirmChannel) => void>();
  /** the logger, its lines naming the connection when it has a name */
  private readonly log: Logger;

  constructor(
    private readonly opts: {
      url: string;
      breakers: BreakerRegistry;
      logger: Logger;
      prefetch?: number;
      /** the connection's name for the broker (client property `connection_name`: `rabbitmqctl list_connections client_properties`, the management UI) */
      name?: string;
    },
  ) {
    this.log = opts.name === undefined ? opts.logger : opts.logger.child({ connection: opts.name });
    this.openFailures = new WarnLimiter(this.log, 30_000);
  }

  /** called with the consumer channel of every new connection (consumers re-subscribe on reconnect) */
  onChannel(fn: (ch: ConfirmChannel) => void): void {
    this.listeners.add(fn);
  }

  /**
   * ms until a publish may be tried: the rabbitmq breaker's wait, or while the broker blocks
   * publishing (a resource alarm) a second, to look again (0 = now)
   */
  blockedForMs(): number {
    const breaker = this.opts.breakers.get('rabbitmq', 'rabbitmq').retryAfterMs();
    return this.blocked ? Math.max(breaker, BLOCKED_RECHECK_MS) : breaker;
  }

  /** the broker's reason while it blocks publishing on this connection (a resource alarm) */
  publishingBlocked(): string | undefined {
    return this.blocked?.reason;
  }

  /**
   * Run `fn` on the confirm channel through the rabbitmq breaker. While the broker blocks
   * publishing, refused at once with a DependencyError (not counted by the breaker: the broker
   * answers, it holds publishes back by design) unless `consumerSide` (no publish in `fn`).
   */
  async run<T>(fn: (ch: ConfirmChannel) => Promise<T>, { consumerSide = false } = {}): Promise<T> {
    if (this.blocked && !consumerSide)
      throw new DependencyError('rabbitmq', `rabbitmq blocks publishing: ${this.blocked.reason}`, {
        answered: true,
      });
    const breaker = this.opts.breakers.get('rabbitmq', 'rabbitmq');
    // the breaker refuses every call while open, so no call would open a connection meanwhile:
    // one is tried beside it (one at a time, at most every BESIDE_BREAKER_EVERY_MS: each refused
    // one is an error line in the broker's log), and once open it shortens the breaker's open
    // spell (CircuitBreaker.connectionRestored). Before, a broker back after a blip still waited
    // out the whole reset time (a review)
    if (
      breaker.state === 'open' &&
      !this.confirm &&
      !this.closed &&
      performance.now() - this.triedBesideAt >= BESIDE_BREAKER_EVERY_MS
    ) {
      this.triedBesideAt = performance.now();
      void this.channel().catch(() => {});
    }
    return breaker
      .execute(async () => {
        try {
          return await fn(await this.channel());
        } catch (error) {
          if (error instanceof DependencyError) throw error;
          this.drop();
          throw new DependencyError('rabbitmq', `rabbitmq: ${(error as Error).message}`, { cause: error });
        }
      })
      .catch((error: unknown) => {
        // an abandoned call leaves its channel in an unknown state: start over on the next call;
        // not while the broker blocks publishing, which is why it went unanswered: the channel is
        // sound, and its publish is confirmed once the alarm lifts (a new connection would only
        // be blocked in turn, and the old one not closed: a blocked broker reads nothing)
        if (error instanceof CallTimeoutError && !this.blocked) this.drop();
        throw error;
      });
  }

  channel(): Promise<ConfirmChannel> {
    if (this.confirm) return Promise.resolve(this.confirm);
    this.opening ??= this.open()
      .then(
        (ch) => {
          if (this.openFailures.warned)
            this.log.info({ unlogged: this.openFailures.reset() }, 'amqp connection opened again');
          return ch;
        },
        (error: unknown) => {
          // retried at every call (the relay polls, the consumer re-subscribes): at most one line
          // per 30 s. Before, a connection the broker refused (a vhost's connection limit) wrote
          // nothing while deliveries stood still (an outside check)
          if (!this.closed)
            this.openFailures.warn(
              {
                err: error instanceof Error ? error.message : String(error),
                ...(isVhostRefusal(error) && { reason: `vhost refused: ${VHOST_REFUSAL_REASONS}` }),
              },
              'amqp connection could not be opened; retrying',
            );
          throw error;
        },
      )
      .finally(() => {
        this.opening = undefined;
      });
    return this.opening;
  }

  /**
   * The current connection's second confirm channel (the one `onChannel` listeners get),
   * connecting if need be (not through the breaker); rejects when the broker cannot be reached.
   * The email worker publishes a failed mail's retry on that of a connection of its own, so
   * that a resource alarm (which blocks a connection that publishes) never blocks the consuming
   * one. Unlike `run`, not refused while the broker blocks publishing: a publish waits there to
   * be confirmed once the alarm ends.
   */
  async sideChannel(): Promise<ConfirmChannel> {
    await this.channel();
    if (!this.side) throw new DependencyError('rabbitmq', 'rabbitmq: connection dropped');
    return this.side;
  }

  private async open(): Promise<ConfirmChannel> {
    if (this.closed) throw new DependencyError('rabbitmq', 'connection closed');
    const model = await amqp.connect(withHeartbeat(this.opts.url, HEARTBEAT_SECONDS), {
      timeout: 2000,
      ...(this.opts.name === undefined ? {} : { clientProperties: { connection_name: this.opts.name } }),
    });
    model.on('error', (e: Error) => this.log.warn({ err: e.message }, 'amqp connection error'));
    // a close the broker made (an operator's close_connection, a node stopping) carries its
    // reason; amqplib emits no `error` for CONNECTION_FORCED, so without this line nothing
    // said the worker was disconnected, nor why (an outside check)
    // (its channels close first, and drop it: so not only while it is the current connection)
    // only a `Connection closed: …` error is the broker's close (with its reason); a heartbeat
    // timeout is amqplib's own (the broker stopped answering: frozen, the network gone) and an
    // "Unexpected close" a socket that ended without the broker's word (an outside check read
    // "closed by the broker" of a SIGSTOPped broker)
    model.on('close', (error?: Error) => {
      if (error && !this.closed) this.log.warn({ err: error.message }, closeLine(error.message));
      if (this.model === model) this.drop();
    });
    model.on('blocked', (reason: unknown) => {
      if (this.model !== model || this.blocked) return;
      this.blocked = { reason: String(reason), since: performance.now() };
      this.log.warn(
        { reason: String(reason) },
        'rabbitmq blocks publishing on this connection (a resource alarm): its publishes wait until it lifts',
      );
    });
    model.on('unblocked', () => {
      if (this.model !== model || !this.blocked) return;
      this.log.info(
        { blockedMs: Math.round(performance.now() - this.blocked.since) },
        'rabbitmq publishing unblocked',
      );
      this.blocked = undefined;
    });
    let ch: ConfirmChannel;
    let consumerChannel: ConfirmChannel;
    try {
      // Two confirm channels: `run` uses one (the relay's publishes, queue checks), consumers get
      // the other (`sideChannel()`: the worker's retries), so a waitForConfirms on one side never
      // waits for (or fails with) the other side's publishes.
      ch = await model.createConfirmChannel();
      consumerChannel = await model.createConfirmChannel();
      for (const c of [ch, consumerChannel]) {
        c.on('error', (e: Error) => this.log.warn({ err: e.message }, 'amqp channel error'));
        c.on('close', () => {
          if (this.model === model) this.drop();
        });
      }
      await declareMailTopology(model, this.log);
      await consumerChannel.prefetch(this.opts.prefetch ?? 16);
    } catch (error) {
      // connected but not usable (no channel, a topology the broker refuses): this connection
      // is nobody's, so it is closed here, else every retry of the caller would leak one
      // (awaited once close() was called, which waits for this open: a review)
      const closing = closeWithin(model, CLOSE_WITHIN_MS);
      if (this.closed) await closing;
      throw error;
    }
    if (this.closed) {
      // close() ran while this connection opened: it is nobody's, and close() waits for this
      await closeWithin(model, CLOSE_WITHIN_MS);
      throw new DependencyError('rabbitmq', 'connection closed');
    }
    this.model = model;
    this.confirm = ch;
    this.side = consumerChannel;
    this.log.info({}, 'amqp connected; topology declared');
    // the broker answers again: publishing need not wait out the breaker's reset time
    this.opts.breakers.get('rabbitmq', 'rabbitmq').connectionRestored('amqp connection opened again');
    for (const l of this.listeners) l(consumerChannel);
    return ch;
  }

  private drop(): void {
    const model = this.model;
    this.model = undefined;
    this.confirm = undefined;
    this.side = undefined;
    // a new connection is told again if the alarm still holds
    this.blocked = undefined;
    if (model) closeWithin(model, CLOSE_WITHIN_MS);
  }

  /**
   * Ends the connection; resolves once no connection of this object is open, one that was opening
   * included (waited for up to CLOSE_WITHIN_MS; one still opening then is closed when it opens)
   */
  async close(): Promise<void> {
    this.closed = true;
    const opening = this.opening;
    const model = this.model;
    this.model = undefined;
    this.confirm = undefined;
    this.side = undefined;
    this.blocked = undefined;
    if (model) await closeWithin(model, CLOSE_WITHIN_MS);
    // an open() in progress sees `closed` once it has its connection, and closes it; waited for
    // at most CLOSE_WITHIN_MS (a broker frozen mid-handshake: it is closed when it answers)
    if (opening) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_WITHIN_MS);
        timer.unref?.();
      });
      await Promise.race([opening.catch(() => {}), waited]).finally(() => clearTimeout(timer));
    }
  }
}

/**
 * Close `model`; a broker that does not answer the close within `ms` (one blocked by an alarm
 * reads nothing) gets its socket destroyed, so no connection outlives its use.
 */
function closeWithin(model: ChannelModel, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const destroyed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      // amqplib keeps the socket as `connection.stream` (lib/connection.js); nothing else ends it
      (
        model as unknown as { connection?: { stream?: { destroy?: () => void } } }
      ).connection?.stream?.destroy?.();
      resolve();
    }, ms);
    timer.unref?.();
  });
  const closed = model.close().catch(() => {});
  return Promise.race([closed, destroyed]).finally(() => clearTimeout(timer));
}

/**
 * `url` asking for a `heartbeat` of `seconds`, unless it names one itself. amqplib takes the
 * heartbeat from a string URL's query only (a `heartbeat` socket option is ignored: before, the
 * worker asked for 5 s that way and got the broker's 60 s).
 */
export function withHeartbeat(url: string, seconds: number): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has('heartbeat')) return url;
  parsed.searchParams.set('heartbeat', String(seconds));
  return parsed.toString();
}
