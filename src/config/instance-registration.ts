/**
 * Registers this instance at `instances/<id>` under an etcd lease (CONTRACT.md §4): the key holds
 * `{url, configRevision, startedAt, build}` and disappears when the instance dies (lease TTL) or
 * deregisters on shutdown. `update()` rewrites it whenever the applied config revision moves, at
 * most every REGISTRATION_MIN_INTERVAL_MS (a burst of changes goes out as one write of the latest).
 * With it go the ids of the tenants whose directory entry this instance rejects
 * (`rejectedTenants`, at most MAX_REJECTED_TENANTS, `rejectedTenantsTruncated` past that): it may
 * serve such a tenant by an entry's last good value that the CLI cannot see (a shard whose
 * `passwordEnv` it lacks, its own SHARDGATE_DB_HOSTS), so `tenants delete-rows` refuses while one
 * names the id.
 * Failure mode: a lost lease (etcd down longer than the TTL) is replaced by a new one, retried
 * with backoff; the API keeps serving meanwhile. A key deleted while its lease lives (an
 * operator's `etcdctl del`) is put back at once: its own watch sees the delete. Before, it stayed
 * away until the next config change, and meanwhile `status` listed the instance as not
 * registered while it served, and the other instances took its idempotency claims for gone.
 */
import { type Etcd3, EtcdLeaseInvalidError, type Lease, type Watcher } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { etcdAuthRefusal } from './etcd-auth-refusal.js';

export interface InstanceRegistrationOptions {
  client: Etcd3;
  prefix: string;
  instanceId: string;
  /** when this process started (ISO 8601); now unless given */
  startedAt?: string;
  url: string;
  logger: Logger;
  ttlSeconds?: number;
  /** the build this process runs (`<version>+<commit>`), registered as `build` */
  build?: string;
  /**
   * the least time between the starts of two writes of the key (REGISTRATION_MIN_INTERVAL_MS unless
   * given); changes meanwhile go out together in the next
   */
  minIntervalMs?: number;
  /**
   * told etcd's refusal of a registration write for want of credentials or permission (the line
   * of etcd-auth-refusal.ts), and undefined at the next write that succeeds after one
   */
  onRefused?: (line: string | undefined) => void;
}

/**
 * Why a lease was lost, in words. etcd3 builds its EtcdLeaseInvalidError message around a lease id
 * and, when its keepalives went unanswered for twice the TTL, passes a sentence for the id: the
 * log read "Lease We lost connection to etcd and our lease has expired. is expired or revoked".
 */
export function leaseLostReason(err: unknown): string {
  if (!(err instanceof EtcdLeaseInvalidError)) return String(err);
  return /We lost connection to etcd/.test(err.message)
    ? 'no keepalive answered for twice the lease TTL: etcd unreachable'
    : 'etcd no longer holds the lease: expired or revoked';
}

/**
 * Every process watching the prefix reads each registration write, and every instance writes one
 * after each config change it applies: a burst of operator puts made each put three watch events
 * per process (an outside check: 47 puts/s to one breaker key raised read p50 from 3.9 to 21.7 ms).
 * Writes of one instance are at least this far apart and carry the latest state, so a burst costs
 * at most ten a second; `tenants move`, which waits for the revisions, waits at most this longer.
 */
export const REGISTRATION_MIN_INTERVAL_MS = 100;

/** how many rejected tenant ids a registration lists */
export const MAX_REJECTED_TENANTS = 100;

/** the registration's JSON value; the rejected ids sorted, listed only when there are any */
export function registrationValue(
  url: string,
  configRevision: number,
  startedAt: string,
  rejectedTenants: readonly string[] = [],
  build?: string,
): string {
  const ids = [...new Set(rejectedTenants)].sort();
  return JSON.stringify({
    url,
    configRevision,
    startedAt,
    ...(build === undefined ? {} : { build }),
    ...(ids.length > 0 ? { rejectedTenants: ids.slice(0, MAX_REJECTED_TENANTS) } : {}),
    ...(ids.length > MAX_REJECTED_TENANTS ? { rejectedTenantsTruncated: true } : {}),
  });
}

export class InstanceRegistration {
  private lease: Lease | undefined;
  private revision = 0;
  private rejectedTenants: readonly string[] = [];
  private readonly startedAt: string;
  private stopped = false;
  /** the last write was refused by etcd (auth): the next success is reported */
  private refused = false;
  private writing: Promise<void> = Promise.resolve();
  /** a write is queued and has not read the state yet: a change now goes out with it */
  private queued = false;
  /** when the last write started (performance.now()) */
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** the watch of the instance's own key (a delete puts it back), once the first write started */
  private watching: Promise<Watcher | undefined> | undefined;

  private readonly warnings: WarnLimiter;

  constructor(private readonly opts: InstanceRegistrationOptions) {
    this.warnings = new WarnLimiter(opts.logger, 30_000);
    // wall clock: registered in etcd, where other processes compare it with times of rows
    this.startedAt = opts.startedAt ?? new Date().toISOString();
  }

  private get key(): string {
    return `${this.opts.prefix}instances/${this.opts.instanceId}`;
  }

  /** Record the config revision this instance has applied, and the tenants it rejects, and publish them. */
  update(configRevision: number, rejectedTenants: readonly string[] = []): void {
    const same =
      rejectedTenants.length === this.rejectedTenants.length &&
      rejectedTenants.every((id, i) => id === this.rejectedTenants[i]);
    if (configRevision === this.revision && same && this.lease) return;
    this.revision = configRevision;
    this.rejectedTenants = [...rejectedTenants];
    this.watching ??= this.watchOwnKey();
    this.queueWrite();
  }

  /**
   * Queues one write of the state as it is when the write starts, at least `minIntervalMs` after
   * the last one started; nothing more while one is queued (it will carry any later change).
   */
  private queueWrite(): void {
    if (this.queued) return;
    this.queued = true;
    this.writing = this.writing
      .then(async () => {
        const wait =
          this.lastWriteAt + (this.opts.minIntervalMs ?? REGISTRATION_MIN_INTERVAL_MS) - performance.now();
        if (wait > 0 && !this.stopped) await new Promise((r) => setTimeout(r, wait));
        this.queued = false;
        this.lastWriteAt = performance.now();
        await this.write();
      })
      .catch(() => {});
  }

  /**
   * Puts the key back when it is deleted while this instance runs. A delete that comes with the
   * lease's end (expired, revoked) is put back too: under the new lease the `lost` handler makes.
   * A watch that cannot be made is retried by etcd3's watch manager on its own.
   */
  private watchOwnKey(): Promise<Watcher | undefined> {
    return this.opts.client
      .watch()
      .key(this.key)
      .create()
      .then((watcher) => {
        watcher.on('delete', () => {
          if (this.stopped) return;
          this.opts.logger.warn(
            { key: this.key },
            'instance registration deleted from etcd while this instance runs; registering again',
          );
          this.queueWrite();
        });
        // etcd3 reconnects the watch itself; an error here is only reported
        watcher.on('error', () => {});
        return watcher;
      })
      .catch((error: unknown) => {
        this.warnings.warn({ err: String(error) }, 'could not watch the instance registration key');
        this.watching = undefined;
        return undefined;
      });
  }

  private async write(): Promise<void> {
    if (this.stopped) return;
    const value = registrationValue(
      this.opts.url,
      this.revision,
      this.startedAt,
      this.rejectedTenants,
      this.opts.build,
    );
    try {
      if (!this.lease) {
        const lease = this.opts.client.lease(this.opts.ttlSeconds ?? 5);
        lease.on('lost', (err) => {
          if (this.lease !== lease || this.stopped) return;
          this.warnings.warn({ err: leaseLostReason(err) }, 'instance lease lost; re-registering');
          this.lease = undefined;
          this.scheduleRetry();
        });
        this.lease = lease;
      }
      await this.lease.put(this.key).value(value).exec();
      if (this.refused) {
        this.refused = false;
        this.opts.onRefused?.(undefined);
      }
      if (this.warnings.warned) {
        this.opts.logger.info({ unloggedWarnings: this.warnings.reset() }, 'instance registered again');
      }
    } catch (error) {
      // retried every second while etcd is away: at most one warning per 30 s (WarnLimiter).
      // A refusal (auth enabled, this process without credentials) is named as one, with the
      // variables to set, and reported to /health/config (`refused`)
      const refused = etcdAuthRefusal(error);
      if (refused) {
        this.refused = true;
        this.opts.onRefused?.(refused);
      }
      this.warnings.warn(
        { err: String(error) },
        refused
          ? `instance registration failed: ${refused}; will retry`
          : 'instance registration failed; will retry',
      );
      this.lease?.release();
      this.lease = undefined;
      this.scheduleRetry();
    }
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.queueWrite(), 1000);
  }

  /** Delete the key and revoke the lease (graceful shutdown). Best effort, bounded by etcd's deadline. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    // not awaited: a watch made while etcd was unreachable settles only once etcd answers (a
    // review: stop() hung past the 15 s shutdown deadline); cancelled whenever it does
    void this.watching?.then((watcher) => watcher?.cancel().catch(() => {}));
    await this.writing;
    const lease = this.lease;
    this.lease = undefined;
    if (lease) await lease.revoke().catch(() => {});
  }
}
