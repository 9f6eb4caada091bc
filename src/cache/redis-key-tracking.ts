/**
 * KeyTracking on Redis client-side caching, in its RESP2 "redirect" form (Redis ≥ 6): a second
 * connection subscribes to `__redis__:invalidate`, and the store's connection runs
 * `CLIENT TRACKING ON REDIRECT <id of the second>`. Redis then remembers the keys that the
 * store's connection reads (the declared KEYS of a script included) and sends one message per
 * key when it changes, whoever changed it; `null` after FLUSHALL/FLUSHDB.
 *
 * Live means: both connections ready, tracking switched on, and a heartbeat PING on the
 * subscriber answered within `maxLagMs` of being sent. A PONG proves that every invalidation Redis
 * produced before the PING has arrived (one connection, in order), so while live an announcement
 * is at most `maxLagMs` late. A closed connection, or a Redis that stops answering (SIGSTOP, a
 * hung host) past that bound, ends the epoch: the near cache forgets everything.
 *
 * Inactive until `activate(true)`: a store whose near cache is off makes Redis track nothing.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import type { KeyTracking } from './interface.js';
import { logConnectionErrors } from './log-connection-errors.js';
import { replaceHungConnection } from './replace-hung-connection.js';

const CHANNEL = '__redis__:invalidate';

export interface RedisKeyTrackingOptions {
  heartbeatMs?: number;
  maxLagMs?: number;
  logger?: Logger;
}

export class RedisKeyTracking implements KeyTracking {
  epoch = 0;
  readonly maxLagMs: number;
  private readonly heartbeatMs: number;
  private readonly logger: Logger | undefined;
  private readonly listeners: ((keys: readonly string[] | null) => void)[] = [];
  private sub: Redis | undefined;
  private subscribedId: string | undefined;
  private established = false;
  /** when the last answered heartbeat was sent (performance.now: a wall-clock step is no lag) */
  private provedAt = 0;
  /** counts losses, so an establishment that raced with one is not trusted */
  private losses = 0;
  private establishing = false;
  private failureLogged = false;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly main: Redis,
    { heartbeatMs = 200, maxLagMs = 1000, logger }: RedisKeyTrackingOptions = {},
  ) {
    this.heartbeatMs = heartbeatMs;
    this.maxLagMs = maxLagMs;
    this.logger = logger;
    // tracking lives on the connection: a reconnect of the store's connection starts untracked
    main.on('close', () => this.lose('store connection closed'));
    main.on('ready', () => void this.establish());
  }

  live(): boolean {
    return this.established && performance.now() - this.provedAt < this.maxLagMs;
  }

  onInvalidate(listener: (keys: readonly string[] | null) => void): void {
    this.listeners.push(listener);
  }

  /** Switch tracking on (near cache enabled) or off; idempotent. */
  activate(on: boolean): void {
    if (on && !this.sub) {
      const sub = this.main.duplicate({
        autoResubscribe: false,
        enableAutoPipelining: false,
        lazyConnect: false,
        // its own backoff: the main client's retryStrategy asks the main connection's
        // NotConnectedCause whether to reconnect at once (a review: a subscriber evicted after
        // each handshake reconnected in a tight loop on the main connection's say-so)
        retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
      });
      this.sub = sub;
      logConnectionErrors(sub, this.logger, 'near-cache-invalidations');
      // a duplicate is a new client: replaced when hung as the main one is (its heartbeat pings)
      replaceHungConnection(sub);
      sub.on('close', () => {
        this.subscribedId = undefined;
        this.lose('invalidation connection closed');
      });
      sub.on('ready', () => void this.establish());
      sub.on('messageBuffer', (channel: Buffer, message: unknown) => {
        if (channel.toString() !== CHANNEL) return;
        const keys = Array.isArray(message) ? message.map((k) => String(k)) : null;
        for (const l of this.listeners) l(keys);
      });
      this.timer = setInterval(() => this.beat(), this.heartbeatMs);
      this.timer.unref?.();
    } else if (!on && this.sub) {
      const sub = this.sub;
      this.sub = undefined;
      clearInterval(this.timer);
      this.timer = undefined;
      this.lose('near cache switched off');
      sub.disconnect();
      if (this.main.status === 'ready')
        this.main.call('CLIENT', 'TRACKING', 'OFF').catch(() => {
          // a reconnect resets tracking anyway
        });
    }
  }

  close(): void {
    this.activate(false);
  }

  private lose(why: string): void {
    this.losses++;
    if (!this.established) return;
    this.established = false;
    this.epoch++;
    this.logger?.warn({ why }, 'near cache: invalidation tracking lost; forgetting what it held');
  }

  private beat(): void {
    const sub = this.sub;
    if (!sub) return;
    if (this.established && !this.live()) this.lose(`no heartbeat answer within ${this.maxLagMs} ms`);
    if (!this.established) {
      void this.establish();
      return;
    }
    const sent = performance.now();
    sub.ping().then(
      () => {
        if (sent > this.provedAt) this.provedAt = sent;
      },
      () => {},
    );
  }

  /** Subscribe (once per subscriber connection) and switch tracking on, then prove it with a PING. */
  private async establish(): Promise<void> {
    const sub = this.sub;
    if (!sub || this.established || this.establishing) return;
    if (sub.status !== 'ready' || this.main.status !== 'ready') return;
    this.establishing = true;
    const losses = this.losses;
    try {
      if (!this.subscribedId) {
        const id = String(await sub.client('ID'));
        await sub.subscribe(CHANNEL);
        this.subscribedId = id;
      }
      await this.main.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', this.subscribedId);
      const sent = performance.now();
      await sub.ping();
      if (this.losses !== losses || this.sub !== sub) return; // lost meanwhile: next beat retries
      this.provedAt = sent;
      this.established = true;
      this.epoch++;
      this.failureLogged = false;
      this.logger?.info({ epoch: this.epoch }, 'near cache: invalidation tracking live');
    } catch (error) {
      if (!this.failureLogged)
        this.logger?.warn({ err: String(error) }, 'near cache: cannot switch on invalidation tracking');
      this.failureLogged = true;
    } finally {
      this.establishing = false;
    }
  }
}
