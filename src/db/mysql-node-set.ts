/**
 * The pool map of the Node adapter: one mysql2 pool per distinct host:port/database, shared by
 * every shard entry naming it, created on first `acquire` and ended `releaseGraceMs` after the
 * last `release` (calls in flight on a removed node get that long to finish).
 *
 * Pools are bounded: `connectionLimit` connections, at most `queueLimit` callers waiting, a
 * `connectTimeoutMs` on new connections, and `acquireTimeoutMs` on waiting for a free one
 * (mysql2 has no acquire timeout of its own). TCP keepalive is on. Every failure to get or keep a
 * connection is a `DependencyUnavailableError`; the connection it happened on is destroyed, not
 * returned to the pool. The server flavour is detected once per pool with `SELECT VERSION()`.
 */
import { drizzle } from 'drizzle-orm/mysql2';
import {
  type Connection,
  type ConnectionOptions,
  createConnection,
  createPool,
  type Pool,
  type PoolConnection,
  type RowDataPacket,
} from 'mysql2/promise';
import type { Logger } from '../observability/logger.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { type AbandonReport, CallStoppedError, DependencyError } from '../resilience/errors.js';
import { stallAwareTimeout, watchStalls } from '../resilience/stall-watch.js';
import { withDeadline } from '../resilience/with-deadline.js';
import type { BesideOutcome } from '../routing/beside-breaker.js';
import type { ServerFlavour } from '../routing/gtid.js';
import {
  type NodeSet,
  type NodeSpec,
  nodeSpecKey,
  type RunOptions,
  type SqlNode,
} from '../routing/sql-node.js';
import { besideOutcomeOf } from './beside-outcome.js';
import { ConnectionShares, ShareWaitEnded } from './connection-shares.js';
import { flavourOfVersion, VERSION_SQL } from './flavour-sql.js';
import {
  DatabaseError,
  isConnectionError,
  isConnectionLimit,
  isDriverError,
  isLostConnection,
  isSchemaMissing,
  isStatementTimeout,
  serverShortageOf,
  toSchemaMissing,
  toServerShortage,
  toStatementTimeout,
  toUnavailable,
} from './mysql-errors.js';
import { MysqlSession } from './mysql-session.js';
import { ReplicationWatch } from './replication-watch.js';
import { SqlContext } from './repos/sql-context.js';
import { SET_SESSION_SQL_MODE } from './session-sql-mode.js';
import { StatementBatcher } from './statement-batcher.js';
import { innodbTrxStates, TrxStates } from './trx-states.js';

export interface MysqlNodeSetOptions {
  user: string;
  /** the password for a node: its shard's `passwordEnv` variable, else SHARDGATE_DB_PASSWORD */
  password: (passwordEnv: string | undefined) => string | undefined;
  logger: Logger;
  connectionLimit?: number;
  queueLimit?: number;
  connectTimeoutMs?: number;
  acquireTimeoutMs?: number;
  releaseGraceMs?: number;
  /** InnoDB lock wait per session; the server default (50 s) would hold requests far too long */
  lockWaitTimeoutSeconds?: number;
  /** a transaction idle this long is ended by the server, its locks released (sessionInitSql) */
  idleTransactionTimeoutSeconds?: number;
  /**
   * the connections of a node's pool one tenant's writes may hold at once (connection-shares.ts);
   * default: the pool's size less 30 % (7 of 10), so one such tenant leaves the others 3 (two
   * leave a third fewer); at most the pool's size
   */
  tenantShare?: number;
}

/**
 * mysql2's refusal of a caller when every connection is in use and its queue (`queueLimit`) is
 * full: this instance's own burst, which says nothing of the node (`busy`, not counted by its
 * breaker). Counted as the node failing, five such refusals opened a healthy master's breaker.
 */
function queueFull(error: unknown): boolean {
  return error instanceof Error && error.message === 'Queue limit reached.';
}

/**
 * After the server refused a new connection for its limit on connections, how long a pool holds
 * at the connections it has (MysqlNode.holdAtLive) before it tries another
 */
export const HOLD_AT_REFUSAL_MS = 2000;
/** refusals one wait for a connection lives through (each holds the pool at what it has) */
const REFUSALS_PER_WAIT = 3;

/** the parts of mysql2's callback pool this adapter reads */
interface PoolInternals {
  config?: { connectionLimit?: number; queueLimit?: number };
  on?: (event: 'release', listener: () => void) => void;
  _allConnections?: { length: number; get(i: number): unknown };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
}

/** mysql2's pool behind the promise pool: undefined if a mysql2 upgrade renamed it */
function internalsOf(pool: Pool): PoolInternals | undefined {
  return (pool as unknown as { pool?: PoolInternals }).pool;
}

/**
 * the pool's connections through their handshake and not failed since (`live`), and those still
 * in their handshake (`connecting`: may yet be refused too)
 */
function connectionsOf(inner: PoolInternals): { live: number; connecting: number } {
  const all = inner._allConnections;
  let live = 0;
  let connecting = 0;
  for (let i = 0; all && i < all.length; i++) {
    const c = all.get(i) as { authorized?: boolean; _fatalError?: unknown } | undefined;
    if (!c || c._fatalError) continue;
    if (c.authorized === true) live++;
    else connecting++;
  }
  return { live, connecting };
}

const NONE_CONNECTING: ReadonlySet<unknown> = new Set();
/** how often a call refused while the pool's first connections are in their handshake looks again */
const HANDSHAKE_POLL_MS = 10;
/** how often a hold looks whether its pool still has a live connection (MysqlNode.holdAtLive) */
const HOLD_WATCH_MS = 100;

/** a pooled connection was found gone before anything of the call could apply: run it again */
class StaleConnection extends Error {}

/** the flavour was being detected on `connection`, destroyed meanwhile (forgetFlavourOn) */
class DetectionAbandoned extends Error {
  constructor(readonly connection: PoolConnection) {
    super('the server version was being read on a connection closed meanwhile');
  }
}
/** what a call granted its tenant's share late in its wait still has, to connect and run */
const SHARE_LEFT_MS = 300;
/** at most this many connections per call (each gone one is dropped from the pool) */
const STALE_ATTEMPTS = 4;

class MysqlNode implements SqlNode<MysqlSession> {
  private flavour: Promise<ServerFlavour> | undefined;
  /** the flavour once detected (a server's flavour does not change under its pool) */
  private flavourKnown: ServerFlavour | undefined;
  /** the detection of the flavour in progress: its connection, and how to fail it */
  private flavourGone: { connection: PoolConnection; fail: (error: unknown) => void } | undefined;
  /** per physical connection: its drizzle handle and prepared statements (gone with it) */
  private readonly statements = new WeakMap<Connection, SqlContext>();
  /**
   * until when (performance.now()) the pool holds at the connections it has (holdAtLive): calls
   * that find none free wait in `heldWaiters`, and no new connection is tried
   */
  private holdUntil = 0;
  private holdTimer: ReturnType<typeof setTimeout> | undefined;
  /** ends the hold early once the pool has no live connection left (nothing would wake its waiters) */
  private holdWatch: ReturnType<typeof setInterval> | undefined;
  /**
   * calls waiting, during a hold, for a connection to be released: woken one per release (a
   * waiter answers false when its call settled meanwhile, and the next is woken), all when the
   * hold ends
   */
  private readonly heldWaiters: (() => boolean)[] = [];

  constructor(
    readonly key: string,
    readonly pool: Pool,
    private readonly acquireTimeoutMs: number,
    /** stops a server thread from another connection; settles when done or given up, never rejects */
    private readonly killThread: (threadId: number) => Promise<KillReport>,
    /** remembers, for the pool's life, whether this node's replication status may be read */
    private readonly replication: ReplicationWatch,
    /** the connections each tenant's calls (RunOptions.share) may hold at once */
    private readonly shares: ConnectionShares,
    private readonly logger: Logger,
    /** SqlNode.connectBeside: a connection of its own, answered within the bound, closed */
    readonly connectBeside: (withinMs: number) => Promise<BesideOutcome>,
  ) {
    // mysql2 emits `release` when a connection goes back to its free list (no caller queued in
    // mysql2 itself for it): the first call waiting through a hold takes it
    internalsOf(pool)?.on?.('release', () => this.wakeOne());
  }

  /**
   * `fn` on a connection of the pool. A connection that had waited in the pool and turns out
   * gone (killed on the server while idle, closed by `wait_timeout`: `isLostConnection`) before
   * any COMMIT was sent on it fails nothing: `fn` runs once more on another connection, within
   * the same call (STALE_ATTEMPTS connections at most). What ran on the lost one was rolled back
   * with it (a write is one transaction until its COMMIT; the other calls read, or upsert a
   * probe row). Before this, one round of `KILL` over 23 idle connections made their next
   * writes fail and opened the master's breaker (about 93 writes answered 503 over 6 s).
   */
  async run<T>(fn: (session: MysqlSession) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const askedAt = performance.now();
    const share = options.share === undefined ? undefined : await this.takeShare(options.share, options);
    // the time the share took comes off the wait for a busy pool
    const runOptions = share?.waitedMs
      ? {
          ...options,
          acquireWithinMs: Math.max(1, this.busyWaitMs(options.acquireWithinMs) - share.waitedMs),
        }
      : options;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.runOnce(fn, runOptions, attempt < STALE_ATTEMPTS, askedAt, share?.waitedMs ?? 0);
        } catch (error) {
          if (!(error instanceof StaleConnection)) throw error;
        }
      }
    } finally {
      // held until the call settled: an abandoned write's, once its server thread was stopped
      share?.release();
    }
  }

  /** how long a call may wait for a busy pool (`withinMs`, RunOptions.acquireWithinMs) */
  private busyWaitMs(withinMs: number | undefined): number {
    return Math.max(1, Math.min(this.acquireTimeoutMs, withinMs ?? this.acquireTimeoutMs));
  }

  /**
   * A connection share of `tenant` (connection-shares.ts), waited for as for a busy pool: within
   * `acquireWithinMs` (then `busy`, not counted by the breaker), until the call's `signal` aborts
   * (never sent, so surely not applied)
   */
  private async takeShare(
    tenant: string,
    { signal, acquireWithinMs }: RunOptions,
  ): Promise<{ release: () => void; waitedMs: number }> {
    const askedAt = performance.now();
    // a call granted its share has SHARE_LEFT_MS at least to connect and run
    const busyWait = this.busyWaitMs(acquireWithinMs);
    const timeoutMs = busyWait > 2 * SHARE_LEFT_MS ? busyWait - SHARE_LEFT_MS : busyWait / 2;
    try {
      const release = await this.shares.take(tenant, stallAwareTimeout, timeoutMs, signal);
      return { release, waitedMs: performance.now() - askedAt };
    } catch (error) {
      if (!(error instanceof ShareWaitEnded)) throw error;
      if (error.why === 'aborted') throw new CallStoppedError(this.key, NEVER_SENT);
      throw new DependencyUnavailableError(
        this.key,
        `the tenant holds its share of the connections (${this.shares.max}), none freed within ${Math.round(timeoutMs)} ms`,
        { busy: true },
      );
    }
  }

  private async runOnce<T>(
    fn: (session: MysqlSession) => Promise<T>,
    options: RunOptions,
    mayRetry: boolean,
    /** when the call asked for a share and a connection: its wait for both is `queuedMs` */
    askedAt: number,
    /** how long it waited for its tenant's share (0: none, or at once) */
    shareWaitedMs: number,
  ): Promise<T> {
    const { signal } = options;
    const connection = await this.acquire(signal, options.acquireWithinMs, shareWaitedMs);
    const sentAt = performance.now();
    // it has served a call before: it may have died in the pool since
    const reused = this.statements.has(connection.connection as unknown as Connection);
    let session: MysqlSession | undefined;
    let broken = false;
    // the caller gave up (the breaker's call timeout, RunOptions): close the connection now, so
    // `fn` cannot send a COMMIT later, and stop its server thread (`killThread`). Closing alone is
    // not enough: a server that is waiting (a global read lock, a full disk) notices the closed
    // socket only once it reads again, and a batch whose COMMIT it has received already would
    // then still apply, after the caller was told 503. The call settles (fails) once the kill is
    // done, with a CallStoppedError that says whether the write surely did not apply and whether
    // the server was stuck; mysql2 tells a closed connection's pending query nothing, so without
    // that it would hang until the server answered.
    let stop: ((error: CallStoppedError) => void) | undefined;
    const stopped = signal && new Promise<never>((_, reject) => (stop = reject));
    stopped?.catch(() => {}); // settled unheard when the call ends first
    let abandoned = false;
    const abandon = () => {
      if (broken) return;
      broken = true;
      abandoned = true;
      const { threadId } = connection;
      this.forgetFlavourOn(connection);
      connection.destroy();
      const times = { queuedMs: sentAt - askedAt, serverMs: performance.now() - sentAt };
      void this.killThread(threadId).then((kill) =>
        stop?.(new CallStoppedError(this.key, abandonReport(kill, times))),
      );
    };
    signal?.addEventListener('abort', abandon, { once: true });
    try {
      // given up on the moment it got its connection: never started, so surely not applied
      if (signal?.aborted && !abandoned) throw new CallStoppedError(this.key, NEVER_SENT);
      // raced too: mysql2 settles nothing on a connection destroyed meanwhile (abandon)
      // known after the pool's first call: no promise per call
      const flavour =
        this.flavourKnown ??
        (await (stopped
          ? Promise.race([this.flavourFor(connection), stopped])
          : this.flavourFor(connection)));
      session = new MysqlSession(flavour, this.statementsOf(connection), this.replication);
      if (!abandoned) options.onSent?.();
      const work = fn(session);
      const result = await (stopped ? Promise.race([work, stopped]) : work);
      if (session.committedWrite) options.onCommitted?.();
      return result;
    } catch (error) {
      // abandoned: the outcome is how the KILL left the write, whatever `fn` failed with first
      // (its next statement on the closed connection fails at once, before the KILL is done)
      if (abandoned && stopped) await stopped;
      if (error instanceof DependencyError) throw error;
      if (broken || isConnectionError(error)) {
        const retry = mayRetry && reused && !broken && !session?.commitSent && isLostConnection(error);
        broken = true;
        if (retry) throw new StaleConnection();
        throw toUnavailable(this.key, error, { commitSent: session?.commitSent });
      }
      if (isSchemaMissing(error)) throw toSchemaMissing(this.key, error);
      if (isStatementTimeout(error)) throw toStatementTimeout(this.key, error);
      if (serverShortageOf(error))
        throw toServerShortage(this.key, error, { commitSent: session?.commitSent });
      if (isDriverError(error) && !(error instanceof DatabaseError)) throw new DatabaseError(this.key, error);
      throw error;
    } finally {
      signal?.removeEventListener('abort', abandon);
      if (broken) {
        this.forgetFlavourOn(connection);
        connection.destroy();
      } else connection.release();
    }
  }

  private statementsOf(connection: PoolConnection): SqlContext {
    // `connection` is this checkout's promise wrapper; `.connection` the physical (callback)
    // connection behind it, typed as the promise class by mysql2 but without its methods
    const physical = connection.connection as unknown as Connection & { promise(): PoolConnection };
    let sql = this.statements.get(physical);
    if (!sql) {
      // bound to a promise wrapper of its own, not to this checkout's, so the prepared
      // statements outlive the checkout
      const client = new StatementBatcher(physical.promise());
      sql = new SqlContext(drizzle({ client: client as unknown as Pool }), client);
      this.statements.set(physical, sql);
    }
    return sql;
  }

  /**
   * A connection of the pool, within `acquireTimeoutMs` (or, waiting for a busy pool, `withinMs`
   * when shorter: the breaker's call timeout less a margin, RunOptions). Given up on (`signal`: the caller's call
   * timeout) or timed out while it waited, it fails at once; the connection that comes later goes
   * back to the pool. Whether the wait was for a busy pool (every connection in use: `busy`,
   * which says nothing of the node) or for a new connection to the node (which does) is read
   * when the wait starts.
   */
  private acquire(signal?: AbortSignal, withinMs?: number, shareWaitedMs = 0): Promise<PoolConnection> {
    // becomes true when the server refuses a new connection for its limit and the call waits
    // for one of the pool's instead (holdAtLive)
    let queued = this.poolFull();
    // the handshakes under way as the wait begins: one still under way when it ends is the node's
    // (not looked for when a connection is free, as on almost every call: it is handed over now)
    const connectingAtStart = this.hasFree() ? NONE_CONNECTING : this.connectingNow();
    const startedAt = performance.now();
    // `withinMs` bounds a wait for a busy pool only: a new connection's is the node's to answer
    let timeoutMs = queued ? this.busyWaitMs(withinMs) : this.acquireTimeoutMs;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      // the time this process did not run is given back (stall-watch.ts): after a freeze, a
      // wait for a connection must not end as `dependency_busy` before the pool had its turn
      const arm = (ms: number) =>
        stallAwareTimeout(() => fail(this.waitFailed(queued, timeoutMs, connectingAtStart)), ms);
      let cancelTimer = arm(timeoutMs);
      /** from now on a wait for a busy pool: bounded by `withinMs` from the start, as one */
      const nowQueued = () => {
        if (queued) return;
        queued = true;
        const busyWait = this.busyWaitMs(withinMs);
        if (busyWait >= timeoutMs) return;
        timeoutMs = busyWait;
        cancelTimer();
        cancelTimer = arm(Math.max(0, busyWait - (performance.now() - startedAt)));
      };
      // given up on while the node made a new connection: the node's failure, unless the call
      // waited longer for its tenant's share than the node had to connect (it was granted one
      // late in its time: a slow connect on a loaded box then says little of the node)
      const onAbort = () =>
        fail(
          new CallStoppedError(
            this.key,
            queued || performance.now() - startedAt < shareWaitedMs
              ? NEVER_SENT
              : { ...NEVER_SENT, dependencyStuck: true },
          ),
        );
      signal?.addEventListener('abort', onAbort, { once: true });
      let refusals = 0;
      const ask = (): void => {
        if (settled) return;
        // holding and none free: wait for a release, without a connection the server refuses
        if (this.holding() && !this.hasFree()) {
          nowQueued();
          // as mysql2's own queue is bounded (`queueLimit`)
          if (this.heldWaiters.length >= (internalsOf(this.pool)?.config?.queueLimit ?? 100)) {
            fail(
              new DependencyUnavailableError(
                this.key,
                'every connection is in use and the queue for one is full',
                {
                  busy: true,
                },
              ),
            );
            return;
          }
          this.heldWaiters.push(() => {
            if (settled) return false;
            ask();
            return true;
          });
          return;
        }
        this.pool.getConnection().then(
          (connection) => {
            if (settled) return connection.release();
            settled = true;
            cancelTimer();
            signal?.removeEventListener('abort', onAbort);
            resolve(connection);
          },
          (error: unknown) => {
            if (settled) return;
            if (queueFull(error))
              return fail(
                new DependencyUnavailableError(
                  this.key,
                  'every connection is in use and the queue for one is full',
                  {
                    busy: true,
                  },
                ),
              );
            if (!isConnectionLimit(error) || ++refusals > REFUSALS_PER_WAIT)
              return fail(toUnavailable(this.key, error));
            const inner = internalsOf(this.pool);
            const { live, connecting } = inner ? connectionsOf(inner) : { live: 0, connecting: 0 };
            if (live > 0) {
              this.holdAtLive(error, live);
              return ask();
            }
            // the pool's first connections still in their handshake (a burst on an empty pool:
            // the refusal can come before their OKs): looked at again shortly, none tried
            if (connecting > 0)
              return void setTimeout(() => awaitHandshakes(error), HANDSHAKE_POLL_MS).unref?.();
            fail(toUnavailable(this.key, error));
          },
        );
      };
      /** refused while others were in their handshake: hold once one is live, fail once none is left */
      const awaitHandshakes = (error: unknown): void => {
        if (settled) return;
        const inner = internalsOf(this.pool);
        const { live, connecting } = inner ? connectionsOf(inner) : { live: 0, connecting: 0 };
        if (live > 0) {
          this.holdAtLive(error, live);
          ask();
        } else if (connecting > 0) setTimeout(() => awaitHandshakes(error), HANDSHAKE_POLL_MS).unref?.();
        else fail(toUnavailable(this.key, error));
      };
      ask();
    });
  }

  /**
   * The server refused a new connection for its limit on connections (`isConnectionLimit`:
   * `max_connections`, `max_user_connections`, the account's own) while the pool has `live`
   * connections that answer: for HOLD_AT_REFUSAL_MS the pool tries no new connection, and calls
   * that find none free wait for one to be released (`heldWaiters`), as for a busy pool (`busy`:
   * not counted by the breaker), instead of each trying a connection the server refuses and
   * failing. Before, an outside check with `max_connections` at what was in use saw writes
   * refused and the master's breaker opened (api-2: 113 answered, 772 × 503) while its 3 live
   * connections answered. A pool with none counts the refusal as the node's failure (acquire).
   * When the hold ends, every waiter asks again (a new connection may be tried).
   */
  private holdAtLive(error: unknown, live: number): void {
    if (!this.holding()) {
      const e = error as { code?: string; message?: string };
      this.logger.warn(
        { node: this.key, connections: live, err: `${e.code ?? 'refused'}: ${e.message ?? ''}` },
        `the server refuses more connections: the pool holds at its ${live} for ${HOLD_AT_REFUSAL_MS} ms (calls wait for one of them)`,
      );
    }
    this.holdUntil = performance.now() + HOLD_AT_REFUSAL_MS;
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.endHold(), HOLD_AT_REFUSAL_MS);
    this.holdTimer.unref?.();
    // a connection destroyed during the hold (a lost one, an abandoned write's) releases nothing:
    // with none live left, the waiters would only time out as busy while the server may accept
    // new connections again, or be down (a review)
    this.holdWatch ??= setInterval(() => {
      const inner = internalsOf(this.pool);
      if (!inner || connectionsOf(inner).live === 0) this.endHold();
    }, HOLD_WATCH_MS);
    this.holdWatch.unref?.();
  }

  /** the hold is over: every waiter asks again (a new connection may be tried) */
  private endHold(): void {
    // before the waiters ask: a timer may fire a little before `holdUntil` (a review: waiters
    // woken then found the hold still on and waited again, with nothing left to wake them)
    this.holdUntil = 0;
    clearTimeout(this.holdTimer);
    clearInterval(this.holdWatch);
    this.holdTimer = undefined;
    this.holdWatch = undefined;
    for (const wake of this.heldWaiters.splice(0)) wake();
  }

  /** a connection was released during a hold: the first waiter whose call still waits takes it */
  private wakeOne(): void {
    for (let wake = this.heldWaiters.shift(); wake; wake = this.heldWaiters.shift()) if (wake()) return;
  }

  private holding(): boolean {
    return performance.now() < this.holdUntil;
  }

  /**
   * A wait for a connection that timed out, in words: a frozen replica's breaker said "no free
   * connection" while the pool's own gauges showed nothing queued (an outside check). A wait for
   * a full pool (`queued`) is this instance's burst (`busy`, not the node's fault) unless a
   * connection that was in its handshake when the wait began (`connectingAtStart`) has not
   * completed it when the wait ends, still connecting or given up (its connect timeout): the
   * server is then not completing connects, which is the node's (a review: a server frozen before
   * its handshake filled the pool with pending connects, and every call after was told "busy with
   * a call"; a third: a wait that outlived those connects' timeout found only their successors,
   * begun during it, and was told "busy" again). A handshake begun during the wait (a busy pool
   * replacing a dropped connection) is not held against the node: it had less than the wait to
   * answer (a second review).
   */
  private waitFailed(
    queued: boolean,
    timeoutMs: number,
    connectingAtStart: ReadonlySet<unknown>,
  ): DependencyUnavailableError {
    const ms = Math.round(timeoutMs);
    let stuck = 0;
    // not a connect the server answered with a refusal (1040 at max_connections: closing, no
    // fatal error; the hold at the live connections makes that wait busy, a review), nor one this
    // process closed; a timed-out one carries its ETIMEDOUT as the fatal error
    if (queued)
      for (const c of connectingAtStart as ReadonlySet<{
        authorized?: boolean;
        _fatalError?: unknown;
        _closing?: boolean;
      }>)
        if (c.authorized !== true && (c._fatalError || !c._closing)) stuck++;
    if (queued && stuck === 0)
      return new DependencyUnavailableError(
        this.key,
        `no free connection within ${ms} ms (every connection of the pool is busy with a call that has not come back: the server may be slow or not answering)`,
        { busy: true },
      );
    return new DependencyUnavailableError(
      this.key,
      queued
        ? `no connection within ${ms} ms (${stuck} of the pool's connections begun before the wait did not complete their connect: the server is not completing connects)`
        : `no new connection within ${ms} ms (the server did not complete the connect)`,
      { busy: false },
    );
  }

  /** the pool's connections in their handshake now (none when mysql2's internals were renamed) */
  private connectingNow(): Set<unknown> {
    const all = internalsOf(this.pool)?._allConnections;
    const connecting = new Set<unknown>();
    for (let i = 0; all && i < all.length; i++) {
      const c = all.get(i) as { authorized?: boolean; _fatalError?: unknown } | undefined;
      if (c && !c._fatalError && c.authorized !== true) connecting.add(c);
    }
    return connecting;
  }

  /** a connection is free in the pool now: getConnection hands it over without connecting */
  hasFree(): boolean {
    return (internalsOf(this.pool)?._freeConnections?.length ?? 0) > 0;
  }

  /** every connection of the pool is in use: a caller now waits for one to be released */
  private poolFull(): boolean {
    const inner = internalsOf(this.pool);
    const limit = inner?.config?.connectionLimit;
    const all = inner?._allConnections?.length;
    const free = inner?._freeConnections?.length;
    // mysql2 internals renamed: taken as not full (the wait then counts against the node, as before)
    if (limit === undefined || all === undefined || free === undefined) return false;
    return free === 0 && (all >= limit || this.holding());
  }

  private detectFlavour(connection: PoolConnection): Promise<ServerFlavour> {
    if (this.flavour) return this.flavour;
    const detection = new Promise<ServerFlavour>((resolve, reject) => {
      this.flavourGone = { connection, fail: reject };
      connection.query<[]>({ sql: VERSION_SQL, rowsAsArray: true }).then(([rows]) => {
        const flavour = flavourOfVersion(String((rows as unknown[][])[0]?.[0] ?? ''));
        this.flavourKnown = flavour;
        resolve(flavour);
      }, reject);
    });
    const settled = () => {
      if (this.flavourGone?.connection === connection) this.flavourGone = undefined;
    };
    detection.then(settled, () => {
      settled();
      if (this.flavour === detection) this.flavour = undefined;
    });
    this.flavour = detection;
    return detection;
  }

  /**
   * `connection` is being destroyed: a detection of the flavour on it would never settle (mysql2
   * settles nothing on a destroyed connection), and every call of the node waiting for it would
   * hang, holding its connection and its tenant's share. It fails with DetectionAbandoned: each
   * call waiting on another connection detects again on its own (`flavourFor`).
   */
  private forgetFlavourOn(connection: PoolConnection): void {
    const gone = this.flavourGone;
    if (gone?.connection !== connection) return;
    this.flavourGone = undefined;
    this.flavour = undefined;
    gone.fail(new DetectionAbandoned(connection));
  }

  /** the node's flavour, detected on `connection` if need be (again, when another's was abandoned) */
  private async flavourFor(connection: PoolConnection): Promise<ServerFlavour> {
    for (;;) {
      try {
        return await this.detectFlavour(connection);
      } catch (error) {
        if (error instanceof DetectionAbandoned && error.connection !== connection) continue;
        throw error;
      }
    }
  }
}

/**
 * The session settings of every connection: the pinned `sql_mode` (session-sql-mode.ts: values
 * are escaped by mysql2 with backslashes), the InnoDB lock wait, and on MariaDB ≥ 10.3 only
 * (inside a MariaDB executable comment, `/` `*M!100300 …`, which MySQL skips as a comment)
 * tracking of `last_gtid`, so a COMMIT's OK packet carries the GTID it produced, and
 * `idle_transaction_timeout`: a transaction that sends nothing for that long is ended by the
 * server (its connection closed), so an instance frozen mid-transaction (SIGSTOP, a VM paused)
 * does not hold its row locks — a book's, a tenant's registration counter — against every
 * other instance until it resumes. No write of this adapter waits between its statements on
 * anything but the server; the instance, on resume, finds the connection gone before its COMMIT
 * was sent: not applied. MySQL has no such setting (there the locks stay until `wait_timeout`).
 */
export function sessionInitSql(lockWaitTimeoutSeconds: number, idleTransactionTimeoutSeconds = 10): string {
  return (
    `${SET_SESSION_SQL_MODE}, innodb_lock_wait_timeout = ${Number(lockWaitTimeoutSeconds)}` +
    ` /*M!100300 , session_track_system_variables = 'last_gtid', idle_transaction_timeout = ${Number(idleTransactionTimeoutSeconds)} */`
  );
}

/** MariaDB and MySQL: "Unknown thread id" (the thread ended already) */
const ER_NO_SUCH_THREAD = 1094;
/** MariaDB: "Unknown query id" (that statement ended already) */
const ER_NO_SUCH_QUERY = 1957;
/** "Unknown column": MySQL's PROCESSLIST has no QUERY_ID */
const ER_BAD_FIELD_ERROR = 1054;

const errnoOf = (error: unknown) => (error as { errno?: number }).errno;

/** a write stopped while it waited for a free connection of a full pool: never sent */
const NEVER_SENT: AbandonReport = { mayHaveApplied: false, dependencyStuck: false, waitedFor: 'connection' };

/**
 * The thread's row of information_schema.PROCESSLIST, or undefined when it is gone. On MySQL,
 * whose PROCESSLIST has no QUERY_ID (and which has no `KILL QUERY ID`), without it: such a
 * write's kill is never taken as proof that it stopped.
 */
async function readThread(
  connection: Connection,
  threadId: number,
  trxStates: TrxStates,
): Promise<ThreadSeen | undefined> {
  const read = (queryId: string) =>
    connection.query<RowDataPacket[]>(
      `SELECT COMMAND, STATE, LEFT(INFO, 16) AS INFO${queryId} FROM information_schema.PROCESSLIST WHERE ID = ?`,
      [threadId],
    );
  const [rows] = await read(', QUERY_ID').catch((error: unknown) => {
    if (errnoOf(error) === ER_BAD_FIELD_ERROR) return read('');
    throw error;
  });
  const seen = rows[0] as Omit<ThreadSeen, 'TRX_STATE'> | undefined;
  if (!seen) return undefined;
  // the transactions' states as InnoDB has them now (trx-states.ts: not INNODB_TRX, a snapshot
  // that goes stale under frequent reads); needs the PROCESS privilege: without it, not known.
  // One read for the kills of the node asking meanwhile. A failed one (not readable, or the
  // connection of the kill that made it gone) tells nothing: this kill goes on to its KILL
  const states = await trxStates
    .read(() =>
      connection
        .query<RowDataPacket[]>('SHOW ENGINE INNODB STATUS')
        .then(([rows]) => innodbTrxStates(String(rows[0]?.Status ?? ''))),
    )
    .catch(() => undefined);
  return { ...seen, TRX_STATE: states === undefined ? undefined : (states.get(threadId) ?? null) };
}

/** a thread's row of information_schema.PROCESSLIST, as `killThread` reads it */
interface ThreadSeen {
  COMMAND: string;
  STATE: string | null;
  /** the first characters of the statement it runs (of a batch: the current one) */
  INFO: string | null;
  /** that statement's id (MariaDB: every statement of a batch has its own) */
  QUERY_ID?: number | string;
  /**
   * its InnoDB transaction's state (`LOCK WAIT`: waiting for a row lock, else `RUNNING`), null without one;
   * undefined when not readable (the account lacks the PROCESS privilege)
   */
  TRX_STATE?: string | null;
}

/** PROCESSLIST states of a statement waiting for a row lock, for when InnoDB's status is not readable */
const ROW_LOCK_WAIT_STATES = new Set([
  'Updating',
  'Update',
  'Statistics',
  'Sending data',
  'Searching rows for update',
]);

/**
 * What a write abandoned at its call timeout, seen as `thread` (undefined: gone), was waiting for:
 * - `row-lock`: a row lock another transaction holds (InnoDB's `LOCK WAIT`; it outlives the
 *   closed socket, so it is there to be read): the write's own wait. Without the PROCESS
 *   privilege, a statement in a state a row-lock wait shows (`ROW_LOCK_WAIT_STATES`);
 * - `table-lock`: a metadata or table lock of one table (`TABLE_LOCK_WAIT_STATES`: a DDL
 *   queued behind a transaction, LOCK TABLES): the node's, not server-wide (abandonReport);
 * - `server-wide`: any other `Waiting for …` (the backup lock of FLUSH TABLES WITH READ LOCK, the
 *   commit lock, a semi-sync ACK, disk space): the server is stuck on writes;
 * - `unclear`: gone, idle, or in between. MariaDB ends a disconnected waiter for a metadata or
 *   backup lock at the next whole second of its wait, and the kill read such a thread as `Sleep`,
 *   `Writing to net`, `Updating status` or an empty state on its way out (under FLUSH TABLES WITH
 *   READ LOCK; counted as not stuck, a master breaker opened by hung writes closed under the
 *   lock); a write that got its connection just before its timeout shows the same.
 *   `abandonReport` decides by where the call spent its time.
 */
export function waitSeen(thread: ThreadSeen | undefined): WaitSeen {
  if (!thread) return 'unclear';
  const rowLock =
    thread.TRX_STATE !== undefined
      ? thread.TRX_STATE === 'LOCK WAIT'
      : thread.COMMAND === 'Query' && ROW_LOCK_WAIT_STATES.has(thread.STATE ?? '');
  if (rowLock) return 'row-lock';
  const state = thread.STATE ?? '';
  if (TABLE_LOCK_WAIT_STATES.has(state)) return 'table-lock';
  return state.startsWith('Waiting for ') ? 'server-wide' : 'unclear';
}

/**
 * PROCESSLIST states of a statement waiting for a lock on one table (or schema) that another
 * session holds or has asked for: a DDL queued behind an open transaction (an `ALTER TABLE`
 * waiting for its metadata lock makes every later statement on that table wait too), a
 * `LOCK TABLES … WRITE`. The server goes on serving every other table: an outside check's
 * `ALTER TABLE books` waiting 11 s opened the master breaker of the shard for every tenant, and
 * registrations (which never touch books) were refused 32 of 49 times.
 */
const TABLE_LOCK_WAIT_STATES = new Set(['Waiting for table metadata lock', 'Waiting for table level lock']);

export type WaitSeen = 'row-lock' | 'table-lock' | 'server-wide' | 'unclear';

/** what `killThread` found: whether the write may have applied, and what it was waiting for */
export interface KillReport {
  mayHaveApplied: boolean;
  wait: WaitSeen;
}

/**
 * The abandoned write's report for the breaker: a row-lock wait is its own; a table-lock wait is
 * the node's but excusable by another write's commit (as an unclear one); a server-wide wait
 * is the server's; an unclear one is the server's unless the call spent longer waiting for a
 * connection (`queuedMs`: its tenant's share, then the pool's, every connection busy) than on the
 * server (`serverMs`):
 * then the server had too little of its time to be judged (an outside check: 15 borrows of one
 * locked book at once, the 5 beyond the pool's 10 connections got theirs as the first were
 * killed, were read just started, and counted as hung writes).
 */
export function abandonReport(
  { mayHaveApplied, wait }: KillReport,
  { queuedMs, serverMs }: { queuedMs: number; serverMs: number },
): AbandonReport {
  if (wait === 'row-lock') return { mayHaveApplied, dependencyStuck: false, waitedFor: 'row-lock' };
  // the node's, but not server-wide: excused when another write of the master committed after
  // it was sent (circuit-breaker.ts), so a lock on one table does not open the breaker while the
  // other tables' writes commit, and a lock on every table a write touches (LOCK TABLES of all,
  // a DDL on the outbox or idempotency table) does, nothing committing (a review)
  if (wait === 'table-lock') return { mayHaveApplied, dependencyStuck: true };
  if (wait === 'unclear' && queuedMs > serverMs)
    return { mayHaveApplied, dependencyStuck: false, waitedFor: 'connection' };
  // seen waiting on the server itself: no commit of another write excuses it (circuit-breaker.ts)
  return wait === 'server-wide'
    ? { mayHaveApplied, dependencyStuck: true, serverWide: true }
    : { mayHaveApplied, dependencyStuck: true };
}

/**
 * Whether interrupting the statement the thread runs stops its transaction before the COMMIT:
 * the statement is one before the COMMIT (a row-lock wait shows `Updating`, `Sending data`,
 * `Update`; a global read lock `Waiting for backup lock`), so the rest of its batch, COMMIT
 * included, does not run. Not so for an idle thread (it has run all it received, COMMIT
 * included), nor for the COMMIT itself: even one still waiting to begin may be past the point
 * where an interruption stops it by the time the interruption arrives.
 */
export function beforeCommit({ COMMAND, INFO }: ThreadSeen): boolean {
  return COMMAND === 'Query' && INFO !== null && !/^\s*commit\b/i.test(INFO);
}

interface Holder {
  node: MysqlNode;
  refs: number;
  endTimer?: ReturnType<typeof setTimeout>;
}

export class MysqlNodeSet implements NodeSet<MysqlSession> {
  private readonly holders = new Map<string, Holder>();
  /** per node key: the InnoDB status reads its kills share (trx-states.ts) */
  private readonly trxStates = new Map<string, TrxStates>();
  private readonly options: Required<Omit<MysqlNodeSetOptions, 'logger' | 'password' | 'user'>>;
  private readonly logger: Logger;

  constructor(private readonly base: MysqlNodeSetOptions) {
    watchStalls();
    const {
      connectionLimit = 10,
      queueLimit = 100,
      connectTimeoutMs = 2000,
      acquireTimeoutMs = 2000,
      releaseGraceMs = 10_000,
      lockWaitTimeoutSeconds = 5,
      idleTransactionTimeoutSeconds = 10,
    } = base;
    const tenantShare = Math.max(
      1,
      Math.min(connectionLimit, base.tenantShare ?? connectionLimit - Math.ceil(connectionLimit * 0.3)),
    );
    this.options = {
      tenantShare,
      connectionLimit,
      queueLimit,
      connectTimeoutMs,
      acquireTimeoutMs,
      releaseGraceMs,
      lockWaitTimeoutSeconds,
      idleTransactionTimeoutSeconds,
    };
    this.logger = base.logger.child({ component: 'mysql-pools' });
  }

  acquire(spec: NodeSpec): SqlNode<MysqlSession> {
    const key = nodeSpecKey(spec);
    let holder = this.holders.get(key);
    if (!holder) {
      const node = new MysqlNode(
        key,
        this.createPool(spec),
        this.options.acquireTimeoutMs,
        (threadId) => this.killThread(spec, key, threadId),
        new ReplicationWatch(key, this.logger),
        new ConnectionShares(this.options.tenantShare),
        this.logger,
        (withinMs) => this.connectBeside(spec, withinMs),
      );
      holder = { node, refs: 0 };
      this.holders.set(key, holder);
      this.logger.info({ node: key }, 'pool created');
    }
    clearTimeout(holder.endTimer);
    holder.endTimer = undefined;
    holder.refs += 1;
    return holder.node;
  }

  release(spec: NodeSpec): void {
    const key = nodeSpecKey(spec);
    const holder = this.holders.get(key);
    if (!holder) return;
    holder.refs -= 1;
    if (holder.refs > 0) return;
    holder.endTimer = setTimeout(() => {
      this.holders.delete(key);
      this.logger.info({ node: key }, 'pool ended');
      void holder.node.pool.end().catch(() => {});
    }, this.options.releaseGraceMs);
    holder.endTimer.unref?.();
  }

  async close(): Promise<void> {
    const holders = [...this.holders.values()];
    this.holders.clear();
    await Promise.all(
      holders.map((h) => {
        clearTimeout(h.endTimer);
        return h.node.pool.end().catch(() => {});
      }),
    );
  }

  /**
   * Usage of every pool, read from mysql2's pool internals (`_allConnections`,
   * `_freeConnections`, `_connectionQueue` of the callback pool behind the promise pool);
   * reported as 0 if a mysql2 upgrade renames them.
   */
  stats(): { node: string; inUse: number; idle: number; queued: number }[] {
    return [...this.holders.values()].map(({ node }) => {
      const inner = internalsOf(node.pool) ?? {};
      const all = inner._allConnections?.length ?? 0;
      const free = inner._freeConnections?.length ?? 0;
      return {
        node: node.key,
        inUse: Math.max(0, all - free),
        idle: free,
        queued: inner._connectionQueue?.length ?? 0,
      };
    });
  }

  private connectionOptions(spec: NodeSpec): ConnectionOptions {
    return {
      host: spec.host,
      port: spec.port,
      database: spec.database,
      user: this.base.user,
      password: this.base.password(spec.passwordEnv),
      connectTimeout: this.options.connectTimeoutMs,
    };
  }

  /** the InnoDB status reads of the node `key` its kills share */
  private trxStatesOf(key: string): TrxStates {
    let states = this.trxStates.get(key);
    if (!states) {
      states = new TrxStates();
      this.trxStates.set(key, states);
    }
    return states;
  }

  /**
   * Stops thread `threadId` on the node, over a connection of its own (the pool's may all be
   * busy; a user may kill its own threads without any privilege): `KILL QUERY ID` of the
   * statement it was seen running when that is one before its COMMIT, then `KILL CONNECTION`.
   * First it reads what the thread was doing (`waitSeen`; `abandonReport` makes of it whether the
   * server was stuck). The report:
   * - the statement seen before its COMMIT (`beforeCommit`) interrupted by its query id: the
   *   write did not apply; stuck as read;
   * - idle, in its COMMIT, or past the statement seen by the time of the kill: it may have
   *   applied (the server resumed and ran it all);
   * - the thread was gone: it may have applied (the server ran what it had), wait `unclear`: a
   *   wait on a metadata or backup lock checks every second whether its client is still there
   *   and ends the thread when not (MariaDB 10.11: an outside check found a write abandoned under
   *   FLUSH TABLES WITH READ LOCK at 1.99 s gone 10 ms later). A row-lock wait is still there to
   *   be read, and a write that ran fine answered;
   * - no connection or no answer (a stopped server; bounded by the connect timeout, and twice
   *   that in all): it may still apply when the server resumes; `server-wide`. Logged.
   * A server that refuses the kill's connection for its limit on connections (`isConnectionLimit`)
   * is asked over one of the node's pooled connections instead, within the same deadline: an
   * outside check with `max_connections` reached had 16 of 16 writes answered
   * `write_outcome_unknown` applied, their kills refused ("Too many connections").
   */
  private killThread(spec: NodeSpec, key: string, threadId: number): Promise<KillReport> {
    const deadlineMs = 2 * this.options.connectTimeoutMs;
    let connection: Connection | undefined;
    /** a pooled connection the kill borrowed: back to the pool if the kill ended well in time */
    let pooled: PoolConnection | undefined;
    let pooledFine = false;
    let ended = false;
    const kill = async (): Promise<KillReport> => {
      const own = await createConnection(this.connectionOptions(spec)).catch(async (error: unknown) => {
        const node = this.holders.get(key)?.node;
        // only one free now: waiting would queue the kill behind the calls it should stop
        if (!node || !isConnectionLimit(error) || !node.hasFree()) throw error;
        const borrowed = await node.pool.getConnection();
        if (ended) {
          // came after the deadline: not used
          borrowed.release();
          throw error;
        }
        pooled = borrowed;
        return borrowed;
      });
      connection = own;
      try {
        const thread = await readThread(own, threadId, this.trxStatesOf(key));
        if (!thread) return { mayHaveApplied: true, wait: waitSeen(thread) };
        // Interrupt the very statement that was seen, if it still runs: `KILL QUERY ID` (MariaDB)
        // fails once the thread has moved on, so a success proves the batch stopped before its
        // COMMIT. A separate read and kill did not: a master resumed from SIGSTOP ran on to its
        // COMMIT in between (an outside check saw 6 of 133 such writes applied).
        const interrupted =
          beforeCommit(thread) && thread.QUERY_ID !== undefined
            ? await own.query('KILL QUERY ID ?', [thread.QUERY_ID]).then(
                () => true,
                (error: unknown) => {
                  if (errnoOf(error) === ER_NO_SUCH_QUERY) return false;
                  throw error;
                },
              )
            : false;
        // then end the thread, so what it has not committed rolls back now
        await own.query('KILL CONNECTION ?', [threadId]).catch((error: unknown) => {
          if (errnoOf(error) !== ER_NO_SUCH_THREAD) throw error;
        });
        if (own === pooled && !ended) pooledFine = true;
        return { mayHaveApplied: !interrupted, wait: waitSeen(thread) };
      } finally {
        if (own !== pooled) own.destroy();
      }
    };
    return (
      withDeadline(kill(), deadlineMs, `no answer within ${deadlineMs} ms`)
        .catch((error: unknown) => {
          this.logger.warn(
            { node: key, threadId, err: error instanceof Error ? error.message : String(error) },
            'could not stop an abandoned write on the server: it may still apply when the server resumes',
          );
          return { mayHaveApplied: true, wait: 'server-wide' as const };
        })
        // past the deadline: do not keep a hung connection; a pooled one that served goes back
        .finally(() => {
          ended = true;
          if (pooled && pooledFine) pooled.release();
          else connection?.destroy();
        })
    );
  }

  /**
   * SqlNode.connectBeside: a connection of its own to the node (outside the pool: no caller
   * loses a slot to it), its handshake and a COM_PING answered within `withinMs`, then closed
   * with COM_QUIT (a reset would be an "Aborted connection" line in the server's log every
   * second). Answers what it found (beside-outcome.ts): `answered`, or how it failed — a
   * refusal or reset, an error packet of the server (its limit on connections, access denied),
   * no answer in time, no socket in this process; the connection is destroyed then, so the
   * attempt holds nothing once settled. Never rejects.
   */
  private async connectBeside(spec: NodeSpec, withinMs: number): Promise<BesideOutcome> {
    const bound = Math.max(1, Math.round(withinMs));
    const deadline = `no answer within ${bound} ms`;
    let connection: Connection | undefined;
    let ended = false;
    const attempt = (async () => {
      const c = await createConnection({ ...this.connectionOptions(spec), connectTimeout: bound });
      if (ended) {
        c.destroy();
        return;
      }
      connection = c;
      await c.ping();
    })();
    try {
      await withDeadline(attempt, bound, deadline);
    } catch (error) {
      ended = true;
      connection?.destroy();
      return besideOutcomeOf(error, deadline);
    }
    ended = true;
    await withDeadline(connection!.end(), bound, 'COM_QUIT unanswered').catch(() => connection?.destroy());
    return 'answered';
  }

  private createPool(spec: NodeSpec): Pool {
    const pool = createPool({
      ...this.connectionOptions(spec),
      connectionLimit: this.options.connectionLimit,
      queueLimit: this.options.queueLimit,
      waitForConnections: true,
      enableKeepAlive: true,
      keepAliveInitialDelay: 10_000,
      supportBigNumbers: true,
      // StatementBatcher joins a request's statements into one COM_QUERY; every statement of
      // this adapter carries its input as escaped values, never pasted into the SQL text
      multipleStatements: true,
      // no stack captured per query for error messages (measurable CPU on every statement);
      // errors are wrapped with the node key at this adapter's edge instead
      trace: false,
    });
    const init = sessionInitSql(
      this.options.lockWaitTimeoutSeconds,
      this.options.idleTransactionTimeoutSeconds,
    );
    // runs once per new physical connection, before it is handed out (queued ahead of its first
    // query). A connection it failed on is destroyed, never used: without the pinned sql_mode a
    // value's escaping may not hold (session-sql-mode.ts); the query queued behind it fails as
    // a lost connection would. It never becomes an unhandled event.
    pool.pool.on('connection', (connection) => {
      connection.query(init, (error) => {
        if (error) connection.destroy();
      });
    });
    return pool;
  }
}
