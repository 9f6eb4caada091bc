/**
 * One AMQP connection with a confirm channel, (re)opened on demand through the `rabbitmq`
 * breaker. A lost connection is dropped and the next `channel()` call reconnects (and
 * re-declares the topology); while the breaker is open, calls fail at once with
 * BreakerOpenError. amqplib errors become DependencyError('rabbitmq') here and nowhere else.
 * A connection that opens but cannot give its channels or declare the topology is closed before
 * the failure is passed on (one connection per retry would leak otherwise).
 */
import amqp, { type ChannelModel, type ConfirmChannel } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { CallTimeoutError, DependencyError } from '../resilience/errors.js';
import { declareMailTopology } from './amqp-topology.js';

export class AmqpConnection {
  private model: ChannelModel | undefined;
  private confirm: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  private closed = false;
  private readonly listeners = new Set<(ch: ConfirmChannel) => void>();

  constructor(
    private readonly opts: { url: string; breakers: BreakerRegistry; logger: Logger; prefetch?: number },
  ) {}

  /** called with the consumer channel of every new connection (consumers re-subscribe on reconnect) */
  onChannel(fn: (ch: ConfirmChannel) => void): void {
    this.listeners.add(fn);
  }

  /** ms until the rabbitmq breaker lets calls through again (0 = it does now) */
  blockedForMs(): number {
    return this.opts.breakers.get('rabbitmq', 'rabbitmq').retryAfterMs();
  }

  /** Run `fn` on the confirm channel through the rabbitmq breaker. */
  async run<T>(fn: (ch: ConfirmChannel) => Promise<T>): Promise<T> {
    return this.opts.breakers
      .get('rabbitmq', 'rabbitmq')
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
        // an abandoned call leaves its channel in an unknown state: start over on the next call
        if (error instanceof CallTimeoutError) this.drop();
        throw error;
      });
  }

  channel(): Promise<ConfirmChannel> {
    if (this.confirm) return Promise.resolve(this.confirm);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<ConfirmChannel> {
    if (this.closed) throw new DependencyError('rabbitmq', 'connection closed');
    const model = await amqp.connect(this.opts.url, { timeout: 2000, heartbeat: 5 });
    model.on('error', (e: Error) => this.opts.logger.warn({ err: e.message }, 'amqp connection error'));
    model.on('close', () => {
      if (this.model === model) this.drop();
    });
    let ch: ConfirmChannel;
    let consumerChannel: ConfirmChannel;
    try {
      // Two confirm channels: `run` publishes on one (the relay), consumers get the other, so a
      // waitForConfirms on one side never waits for (or fails with) the other side's publishes.
      ch = await model.createConfirmChannel();
      consumerChannel = await model.createConfirmChannel();
      for (const c of [ch, consumerChannel]) {
        c.on('error', (e: Error) => this.opts.logger.warn({ err: e.message }, 'amqp channel error'));
        c.on('close', () => {
          if (this.model === model) this.drop();
        });
      }
      await declareMailTopology(model, this.opts.logger);
      await consumerChannel.prefetch(this.opts.prefetch ?? 16);
    } catch (error) {
      // connected but not usable (no channel, a topology the broker refuses): this connection
      // is nobody's, so it is closed here, else every retry of the caller would leak one
      model.close().catch(() => {});
      throw error;
    }
    this.model = model;
    this.confirm = ch;
    this.opts.logger.info({}, 'amqp connected; topology declared');
    for (const l of this.listeners) l(consumerChannel);
    return ch;
  }

  private drop(): void {
    const model = this.model;
    this.model = undefined;
    this.confirm = undefined;
    model?.close().catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const model = this.model;
    this.drop();
    await model?.close().catch(() => {});
  }
}
