/**
 * The shard router: which database node serves a call.
 *
 * - Writes and transactions: `master(shardId).run(...)`.
 * - Reads: `read(shardId, options, fn)` picks, by weight, a replica admitted by its lag
 *   (ReplicaHealth + MasterTimeline, probed every `probeIntervalMs`), and falls back to the master
 *   when none is admitted or the chosen replica turns out unreachable.
 * - Read-your-writes: with `position`, a replica whose last probe shows that position applied is
 *   used at once; else one admitted replica close enough is asked to wait for it (`waitFor`, up
 *   to `replication/ryw_timeout_ms`, kept below the replica breaker's `call_timeout_ms`) and
 *   serves the read on the same connection; else the master.
 *
 * Nodes come from a `NodeSet` (one pool per host) and are rebuilt as `shards/<id>` keys change;
 * every node passes `NodeGuard.wrap` once, so a breaker per node sees every call including probes.
 * `replication/max_lag_seconds` and `ryw_timeout_ms` are read from the live config on every use.
 *
 * A replica is judged against the master sample of the same probe round. One that lacks the
 * oldest master position the shard's timeline knows (fresh at start and on a master change;
 * pruned to what every probed replica applied) has a lag only bounded from below: it is not read
 * from until it applies that position, and is excluded once the position is older than
 * `max_lag_seconds` (master-timeline.ts, replica-health.ts). So with the master unreachable since
 * the instance started, no replica of that shard is read.
 *
 * A replica must replicate from the shard's master: its applied position can never be ahead of
 * what the master has at a later moment. One that is (`shards add-replica` of another shard's
 * replica, `set-master` to a server its replicas never followed: an outside check saw token reads
 * of a new book answer 404 from such a replica, shown as lag 0) has transactions the master does
 * not — the sequence numbers of a MariaDB domain alone made it look caught up. Each probe compares
 * the replica's previous position with the master's position read after it (a probe clock orders
 * them; comparing within one round would race a busy master); on MariaDB also with the master's
 * binlog state: the server id that wrote each domain's last transaction the replica applied must
 * be in the master's binlog at that sequence number or later (gtid.ts writtenBy), which catches a
 * foreign replica whose numbers trail the master's too. Such a replica is excluded, whatever its
 * lag, until a later probe finds its position the master's (re-seeded from it) or the shard's
 * master changes. On MySQL the server UUIDs the master names are compared and a replica's own
 * transactions left out (gtid.ts followsPosition).
 *
 * A replica whose replication stopped on an error (its SQL thread on a duplicate key, its IO
 * thread given up: replication-stopped.ts) is excluded at the probe that sees it, its reason as
 * its `lastError`, whatever its lag: on an idle shard its lag would never grow. A plain `STOP
 * SLAVE`, or an IO thread still connecting to its master, is left to the lag.
 *
 * A node whose breaker is open is refused its probes; each round tries it beside the breaker
 * instead (SqlNode.tryBesideBreaker: a connection of its own within `probeTimeoutMs`, at most one
 * in flight), and an answer shortens the breaker's open spell (beside-breaker.ts).
 *
 * Failure modes: a probe that fails or takes longer than `probeTimeoutMs` excludes the replica;
 * at most one probe per node is in flight, so a hung server costs one connection, not one per tick.
 * A shard missing from the config throws DependencyUnavailableError.
 */
import type { ConfigStore } from '../config/interface.js';
import type { ShardConfig } from '../config/schema.js';
import type { ReadSource, ReplicationPosition } from '../domain/data-access.js';
import type { Logger } from '../observability/logger.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { DependencyError } from '../resilience/errors.js';
import { ownResourceShortage } from '../resilience/own-resources.js';
import { stallAwareTimeout, stalledMs } from '../resilience/stall-watch.js';
import {
  followsPosition,
  type GtidPosition,
  gtidContains,
  gtidText,
  gtidUnion,
  parseBinlogState,
  parseGtid,
  type ServerFlavour,
} from './gtid.js';
import { MasterTimeline } from './master-timeline.js';
import { type ReplicaCause, ReplicaHealth, type ReplicaState } from './replica-health.js';
import {
  type NodeGuard,
  type NodeSession,
  type NodeSet,
  type NodeSpec,
  nodeSpecKey,
  passThroughGuard,
  type SqlNode,
} from './sql-node.js';
import { weightedPick } from './weighted-pick.js';

export interface ShardRouterOptions<S extends NodeSession> {
  config: ConfigStore;
  nodes: NodeSet<S>;
  logger: Logger;
  guard?: NodeGuard;
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
  /** consecutive good probes (below half the max lag) before an excluded replica is read again */
  readmitProbes?: number;
  /** start the probe timer (tests drive `probeOnce` themselves) */
  autoProbe?: boolean;
  random?: () => number;
  /**
   * the clock of the master timeline's samples and the lags read from it (and of the schema
   * warnings' pacing): monotonic by default (`performance.now`). On `Date.now`, a wall clock
   * stepped back an hour showed a replica whose SQL thread was stopped as lag 0 and read from it
   * 18 s stale (max 5 s); one stepped 3 h ahead showed a healthy replica 10,805 s behind and
   * excluded it (an outside check with libfaketime). The samples never leave this process.
   */
  now?: () => number;
  /**
   * the event loop's idle time so far (ms; Node: `performance.nodeTiming.idleTime`): a replica
   * probe's round trip counts only the time the loop waited idle for it (probeNode)
   */
  loopIdleMs?: () => number;
  /** a shard's master history went back (`historyWentBack`): the read cache forgets the shard */
  onHistoryReset?: (shardId: string) => void;
  /** each position a shard's master answered its probe with (cache/master-history-marks.ts) */
  onMasterPosition?: (shardId: string, position: GtidPosition) => void;
  /** each read served: what it asked for and where it was read (db/read-counter.ts) */
  onRead?: (shardId: string, wanted: ReadWanted, servedFrom: ReadSource) => void;
}

/**
 * What a read asked for: a replica (`replica`), a replica that applied a given write
 * (`replica_at_position`: a consistency token's, or a cache entry's floor when a read after a
 * write refills it), the master (`master`), or the master unless it does not answer
 * (`master_else_replica`: a token's member check, a login)
 */
export type ReadWanted = 'replica' | 'replica_at_position' | 'master' | 'master_else_replica';

interface MasterEntry<S extends NodeSession> {
  name: string;
  spec: NodeSpec;
  node: SqlNode<S>;
  probing: boolean;
}

interface ReplicaEntry<S extends NodeSession> extends MasterEntry<S> {
  weight: number;
  health: ReplicaHealth;
  position: GtidPosition | undefined;
  /** the probe clock when `position` was read */
  positionAt: number;
  /** its last judged position was not its master's (file comment) */
  diverged: boolean;
  /** "lacks the schema" at most once a minute: said on a read, which may come thousands a second */
  schemaWarnings: WarnLimiter;
  /** "ended a read at its time limit", as rarely */
  timeLimitWarnings: WarnLimiter;
}

interface ShardEntry<S extends NodeSession> {
  id: string;
  raw: string;
  master: MasterEntry<S>;
  replicas: ReplicaEntry<S>[];
  timeline: MasterTimeline;
  /**
   * the master's newest position (and MariaDB binlog state, read after it), with the probe clock
   * when the probe that read them began
   */
  lastMaster: { position: GtidPosition; state?: ReadonlyMap<string, bigint>; startedAt: number } | undefined;
  /**
   * why the master is taken as not answering (`readMasterElseReplica`): a read it left without an
   * answer past the master read budget, or a failed probe; cleared by its next answered probe
   */
  masterUnanswered: string | undefined;
  /** the probe clock when `masterUnanswered` was set: a probe begun before cannot clear it */
  masterUnansweredAt: number;
  /** the router's clock (`now`) when `masterUnanswered` was first set, until it is cleared */
  masterUnansweredSince?: number;
  /** the positions of the writes this instance committed on this master (`noteCommitted`) */
  committed?: GtidPosition;
}

/** what a shard's master is known to have had: its last probe sample and the writes committed on it */
function lastKnown(shard: { timeline: MasterTimeline; committed?: GtidPosition } | undefined) {
  const last = shard?.timeline.last;
  const committed = shard?.committed;
  return last && committed ? gtidUnion(last, committed) : (last ?? committed);
}

class ProbeTimeoutError extends Error {
  /** `onServer`: the probe had its connection and waited on the node (else on this process's pool) */
  constructor(
    ms: number,
    readonly onServer: boolean,
  ) {
    super(`probe timed out after ${ms} ms`);
  }
}

export interface ReplicaStatus {
  name: string;
  node: string;
  weight: number;
  state: ReplicaState;
  lagSeconds: number | null;
  lastError?: string;
  /** why it is not admitted now (replica-health.ts ReplicaCause); absent while admitted */
  cause?: ReplicaCause;
}

export interface ShardStatus {
  id: string;
  /** `unanswered`: why reads that may use a replica skip the master now (readMasterElseReplica) */
  master: { name: string; node: string; unanswered?: string };
  replicas: ReplicaStatus[];
}

export interface ReadRequest {
  position?: ReplicationPosition;
  /** see ReadOptions.from in domain/data-access.ts */
  from?: 'master' | 'master-else-replica';
}

export interface RoutedRead<T> {
  value: T;
  readFrom: ReadSource;
}

function wantedOf(request: ReadRequest): ReadWanted {
  if (request.from === 'master') return 'master';
  if (request.from === 'master-else-replica') return 'master_else_replica';
  return request.position ? 'replica_at_position' : 'replica';
}

const NOT_REACHED = Symbol('not-reached');
const AHEAD_OF_MASTER =
  "replica has applied transactions the shard's master does not have (its GTID position is ahead of the master's, or names a server the master's binlog does not hold): it does not replicate from this master; excluded";
/** how long past `ryw_timeout_ms` a read waits for a replica's answer before reading the master */
const RYW_WAIT_MARGIN_MS = 100;
/** a replica lacking the schema, or ending reads at its time limit: one warning a minute (with how many it stands for) */
const SCHEMA_WARN_EVERY_MS = 60_000;
/**
 * how long a `master-else-replica` read (a token's member check, a login) waits for the master
 * before it asks a replica instead: a healthy master answers such a primary-key read in
 * milliseconds, while a hung one would hold it for its breaker's whole call timeout (capped 250 ms
 * below it, like a replica's wait)
 */
const MASTER_READ_BUDGET_MS = 500;

export class ShardRouter<S extends NodeSession> {
  private readonly shards = new Map<string, ShardEntry<S>>();
  private readonly config: ConfigStore;
  private readonly nodes: NodeSet<S>;
  private readonly logger: Logger;
  private readonly guard: NodeGuard;
  private readonly probeTimeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly readmitProbes: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private readonly loopIdleMs: (() => number) | undefined;
  private readonly onHistoryReset: ((shardId: string) => void) | undefined;
  private readonly onMasterPosition: ((shardId: string, position: GtidPosition) => void) | undefined;
  private readonly onRead: ShardRouterOptions<S>['onRead'];
  private readonly unsubscribe: () => void;
  private readonly timer: ReturnType<typeof setInterval> | undefined;
  private closed = false;
  /** orders probe events: a replica's reading before a master probe's start (file comment) */
  private probeClock = 0;

  constructor({
    config,
    nodes,
    logger,
    guard = passThroughGuard,
    probeIntervalMs = 1000,
    probeTimeoutMs = 1500,
    readmitProbes = 2,
    autoProbe = true,
    random = Math.random,
    now = () => performance.now(),
    loopIdleMs,
    onHistoryReset,
    onMasterPosition,
    onRead,
  }: ShardRouterOptions<S>) {
    this.onRead = onRead;
    this.onHistoryReset = onHistoryReset;
    this.onMasterPosition = onMasterPosition;
    this.config = config;
    this.nodes = nodes;
    this.logger = logger.child({ component: 'shard-router' });
    this.guard = guard;
    this.probeTimeoutMs = probeTimeoutMs;
    this.probeIntervalMs = probeIntervalMs;
    this.readmitProbes = readmitProbes;
    this.random = random;
    this.now = now;
    this.loopIdleMs = loopIdleMs;
    this.sync(config.current().shards);
    this.unsubscribe = config.onChange((snapshot, changes) => {
      if (changes.some((c) => c.key.startsWith('shards/'))) this.sync(snapshot.shards);
    });
    if (autoProbe) {
      this.timer = setInterval(() => void this.probeOnce(), probeIntervalMs);
      (this.timer as { unref?: () => void }).unref?.();
      void this.probeOnce();
    }
  }

  /**
   * A write committed at `gtid` on `master` (the node `master(shardId)` gave): kept, so that a
   * new master of the shard that lacks it is taken as a history gone back. A node no longer the
   * shard's master is ignored.
   */
  noteCommitted(shardId: string, master: SqlNode<S>, flavour: ServerFlavour, gtid: string): void {
    const shard = this.shards.get(shardId);
    // by key: the node of a rebuilt entry (any shards/<id> change) is another wrapper of the same one
    if (!shard || shard.master.node.key !== master.key) return;
    const position = parseGtid(flavour, gtid);
    if (!position) return;
    shard.committed = shard.committed ? gtidUnion(shard.committed, position) : position;
  }

  /** The master of a shard: every write and transaction runs through it. */
  master(shardId: string): SqlNode<S> {
    return this.entry(shardId).master.node;
  }

  async read<T>(
    shardId: string,
    request: ReadRequest,
    fn: (session: S) => Promise<T>,
  ): Promise<RoutedRead<T>> {
    const routed = await this.route(this.entry(shardId), request, fn);
    this.onRead?.(shardId, wantedOf(request), routed.readFrom);
    return routed;
  }

  private async route<T>(
    shard: ShardEntry<S>,
    request: ReadRequest,
    fn: (session: S) => Promise<T>,
  ): Promise<RoutedRead<T>> {
    if (request.from === 'master-else-replica') return this.readMasterElseReplica(shard, fn);
    if (request.from !== 'master') {
      const served = await this.readFromReplica(shard, request.position, fn);
      if (served !== NOT_REACHED) return { value: served as T, readFrom: 'replica' };
    }
    return { value: await shard.master.node.run(fn), readFrom: 'master' };
  }

  /**
   * The master's answer, else a replica's. A read asks a replica when the master fails
   * (unreachable, its breaker open: no `busy` pool needed), or has not answered within the master
   * read budget (`MASTER_READ_BUDGET_MS`, at most its breaker's `call_timeout_ms` minus 250 ms;
   * time this process stalled is given back), this instance's wait for a connection included.
   * With no replica to ask, or one that fails, the master's own answer (or failure) is waited for.
   * A replica's answer is waited for as long as its breaker allows (no ryw budget: giving up would
   * fail a read a slow replica serves).
   *
   * The master is taken as not answering (`masterUnanswered`) when it held such a read's query
   * longer than the budget (the clock starts once the query has a connection: a pool busy with
   * this instance's own burst is no fault of the master), or a probe of it failed to reach it or
   * timed out. Until a probe begun after that answers (about a second), such reads go to a replica
   * at once. Before, each one waited out the breaker's call timeout (2 s) until enough of them had
   * failed to open it (an outside check: token reads of a tenant whose master was SIGSTOPped took
   * 2 s each). Revocation and login then rest on a replica's row, as while the master is down:
   * while no master probe answers, the replica's lag is measured against the master's samples
   * but the last one (which a crash may have cut from the master's binlog).
   */
  private async readMasterElseReplica<T>(
    shard: ShardEntry<S>,
    fn: (session: S) => Promise<T>,
  ): Promise<RoutedRead<T>> {
    const fromReplica = async (): Promise<RoutedRead<T> | undefined> => {
      const served = await this.readFromReplica(shard, undefined, fn, { bounded: false });
      return served === NOT_REACHED ? undefined : { value: served as T, readFrom: 'replica' };
    };
    // where the master's answer can still serve the read: a replica that throws what is no
    // dependency failure (a query error) leaves it to the master, logged, as with no replica
    const fromReplicaElseMaster = () =>
      fromReplica().catch((error: unknown) => {
        this.logger.warn(
          { shard: shard.id, err: (error as Error).message },
          'replica read failed; reading from master',
        );
        return undefined;
      });
    if (shard.masterUnanswered !== undefined) {
      const served = await fromReplicaElseMaster();
      if (served) return served;
      return { value: await shard.master.node.run(fn), readFrom: 'master' };
    }
    const budget = Math.min(
      MASTER_READ_BUDGET_MS,
      this.config.current().breakers['mysql-master'].call_timeout_ms - 250,
    );
    if (budget <= 0) {
      try {
        return { value: await shard.master.node.run(fn), readFrom: 'master' };
      } catch (error) {
        // the master answered (a table it lacks: DependencyError.answered): not a master to skip
        if (!(error instanceof DependencyError) || error.answered) throw error;
        const served = await fromReplica();
        if (!served) throw error;
        return served;
      }
    }
    const read = shard.master.node.run(async (session) => {
      const cancel = stallAwareTimeout(
        () => this.masterUnanswered(shard, `no answer to a read within ${budget} ms`),
        budget,
      );
      try {
        return await fn(session);
      } finally {
        cancel();
      }
    });
    read.catch(() => {}); // abandoned for a replica's answer: must not surface as unhandled
    let answered: { value: T } | undefined;
    try {
      answered = await this.withinBudget(read, budget);
    } catch (error) {
      if (!(error instanceof DependencyError) || error.answered) throw error;
      const served = await fromReplica();
      if (!served) throw error;
      return served;
    }
    if (answered) return { value: answered.value, readFrom: 'master' };
    const served = await fromReplicaElseMaster();
    if (served) return served;
    return { value: await read, readFrom: 'master' };
  }

  /** marks the master as not answering, from the probe clock's now (see readMasterElseReplica) */
  private masterUnanswered(seen: ShardEntry<S>, reason: string): void {
    // the shard as it is now: rebuilt meanwhile with the same master (a replica changed), the
    // mark holds for it; removed, or with another master, it does not
    const shard = this.shards.get(seen.id);
    if (!shard || nodeSpecKey(shard.master.spec) !== nodeSpecKey(seen.master.spec)) return;
    if (shard.masterUnanswered === undefined)
      this.logger.warn(
        { master: shard.master.name, reason },
        'master not answering; reads that may use a replica go to one until a probe of the master answers',
      );
    if (shard.masterUnanswered === undefined) shard.masterUnansweredSince = this.now();
    shard.masterUnanswered = reason;
    shard.masterUnansweredAt = ++this.probeClock;
  }

  /** `read`'s value, or undefined once `ms` of this process's running time passed without it */
  private async withinBudget<T>(read: Promise<T>, ms: number): Promise<{ value: T } | undefined> {
    let cancel = () => {};
    const deadline = new Promise<undefined>((resolve) => {
      cancel = stallAwareTimeout(() => resolve(undefined), ms);
    });
    try {
      return await Promise.race([read.then((value) => ({ value })), deadline]);
    } finally {
      cancel();
    }
  }

  private async readFromReplica<T>(
    shard: ShardEntry<S>,
    position: ReplicationPosition | undefined,
    fn: (session: S) => Promise<T>,
    { bounded = true }: { bounded?: boolean } = {},
  ): Promise<T | typeof NOT_REACHED> {
    const admitted = shard.replicas.filter((r) => r.health.admitted && r.weight > 0);
    if (admitted.length === 0) return NOT_REACHED;
    // A wait longer than the replica breaker's call timeout would be abandoned by the breaker and
    // counted as a failure of a healthy replica: never wait that long.
    const { replication, breakers } = this.config.current();
    const timeoutMs = Math.min(replication.rywTimeoutMs, breakers['mysql-replica'].call_timeout_ms - 250);
    if (!position) {
      const pick = weightedPick(admitted, (r) => r.weight, this.random)!;
      const read = this.runOnReplica(pick, fn);
      return bounded ? this.withinRywBudget(read, Math.max(0, timeoutMs), pick) : read;
    }
    const wanted = parseGtid(position.flavour, position.gtid);
    if (!wanted) return NOT_REACHED;
    const applied = admitted.filter((r) => r.position && gtidContains(r.position, wanted));
    if (applied.length > 0) {
      const pick = weightedPick(applied, (r) => r.weight, this.random)!;
      return this.withinRywBudget(this.runOnReplica(pick, fn), Math.max(0, timeoutMs), pick);
    }
    if (timeoutMs <= 0) return NOT_REACHED;
    // Only wait on a replica whose measured lag suggests it can catch up within the timeout.
    const close = admitted.filter((r) => r.health.lagSeconds * 1000 <= timeoutMs);
    const pick = weightedPick(close, (r) => r.weight, this.random);
    if (!pick) return NOT_REACHED;
    const waited = this.runOnReplica(pick, async (session) => {
      if (session.flavour !== position.flavour) return NOT_REACHED;
      if (!(await session.waitFor(position.gtid, timeoutMs))) return NOT_REACHED;
      return fn(session);
    });
    // not excluded when late: the server's own wait ends at timeoutMs, a load spike may add the
    // margin to its answer, and a replica still catching up is not a sick one
    return this.withinRywBudget(waited, timeoutMs);
  }

  /**
   * A read takes at most about `ryw_timeout_ms` on a replica: with a consistency token, whether
   * it waits for the replica to apply the token or the replica had applied it already; without
   * one, its query. The server ends its own wait after timeoutMs, but a replica that does not
   * answer at all (hung, SIGSTOPped) would hold the read until the breaker's call timeout (2 s by
   * default: an outside check saw every read without a token take 2 s for the first 2 s of a
   * replica's SIGSTOP). So give up on it a little after timeoutMs and read from the master.
   * A replica (`replica`) whose query took that long is excluded until its probes re-admit it
   * (two in a row that find it caught up): the reads after this one go to the master at once,
   * and a replica that is merely slow is not asked every read twice, its own queries piling up
   * in its pool. The time this process did not run is given back once (stall-watch.ts): a stall
   * of the instance is no fault of the replica. The abandoned call finishes (or times out, and
   * counts against the replica's breaker) on its own; its result is dropped.
   */
  private async withinRywBudget<T>(
    read: Promise<T | typeof NOT_REACHED>,
    timeoutMs: number,
    replica?: ReplicaEntry<S>,
  ): Promise<T | typeof NOT_REACHED> {
    let cancel = () => {};
    const deadline = new Promise<typeof NOT_REACHED>((resolve) => {
      cancel = stallAwareTimeout(() => {
        const ms = timeoutMs + RYW_WAIT_MARGIN_MS;
        if (replica?.health.admitted)
          this.logger.warn(
            { replica: replica.name, ms },
            'replica did not answer a read in time; excluded until its probes re-admit it',
          );
        replica?.health.fail(`no answer to a read within ${ms} ms`, 'read_timeout');
        resolve(NOT_REACHED);
      }, timeoutMs + RYW_WAIT_MARGIN_MS);
    });
    read.catch(() => {}); // an abandoned call must not surface as unhandled
    try {
      return await Promise.race([read, deadline]);
    } finally {
      cancel();
    }
  }

  /**
   * A replica that cannot be reached is excluded at once and the read goes to the master. One
   * that answered without the schema the read needs (`answered`) is not excluded, nor one that
   * ended the read at its own statement time limit (`endedAtTimeLimit`: it serves other reads;
   * its breaker counts the slowness; before, one such read excluded it for every read until its
   * next probe). One
   * this instance's pool has no connection for (`busy`: every connection in use and the queue
   * full, this instance's own burst) is not, nor one this process could not open a socket for
   * (EMFILE/ENFILE): that read goes to the master, the next may use it.
   */
  private async runOnReplica<T>(
    replica: ReplicaEntry<S>,
    fn: (session: S) => Promise<T | typeof NOT_REACHED>,
  ): Promise<T | typeof NOT_REACHED> {
    try {
      return await replica.node.run(fn);
    } catch (error) {
      // unreachable, timed out, or its breaker is open: all mean "not now" for this replica
      if (!(error instanceof DependencyError)) throw error;
      // or this process out of file descriptors (own-resources.ts): the replica is not at fault
      if (error.busy || ownResourceShortage(error)) return NOT_REACHED;
      // it answered, lacking a table (DDL of a migration not applied there yet): this read goes
      // to the master, and the replica stays admitted
      if (error.answered) {
        replica.schemaWarnings.warn(
          { replica: replica.name, err: error.message },
          'replica lacks the schema; reading from master',
        );
        return NOT_REACHED;
      }
      if (error.endedAtTimeLimit) {
        replica.timeLimitWarnings.warn(
          { replica: replica.name, err: error.message },
          'replica ended a read at its statement time limit (max_statement_time); reading from master',
        );
        return NOT_REACHED;
      }
      replica.health.fail(error.message);
      this.logger.warn(
        { replica: replica.name, err: error.message },
        'replica unreachable; reading from master',
      );
      return NOT_REACHED;
    }
  }

  /** One probe round over every shard: the master's position and each replica's, concurrently. */
  async probeOnce(): Promise<void> {
    await Promise.all([...this.shards.values()].map((shard) => this.probeShard(shard)));
  }

  private async probeShard(shard: ShardEntry<S>): Promise<void> {
    // a node whose breaker is open is refused its probe below: tried beside the breaker instead
    // (breaker-node-guard.ts), so a node back after a blip is known about a second later
    if (!this.closed)
      for (const entry of [shard.master, ...shard.replicas])
        entry.node.tryBesideBreaker?.(this.probeTimeoutMs);
    const startedAt = ++this.probeClock;
    /** this round's master probe's round trip, when it answered */
    let masterRttMs: number | undefined;
    const master = this.probeNode(shard.master, 'master')
      .then((read) => {
        if (!read) return;
        // an answer to a probe of an entry replaced since (a shard map change keeps the timeline
        // of the same master) may be older than the new entry's first: recorded, it read as a
        // history gone back (a review)
        if (this.shards.get(shard.id) !== shard) return;
        masterRttMs = read.rttMs;
        const wentBack = shard.timeline.record(read.position, this.now());
        if (wentBack) this.historyWentBack(shard, wentBack, read.position);
        this.onMasterPosition?.(shard.id, read.position);
        shard.lastMaster = { ...read, startedAt };
        // only a probe begun after the master was marked: one sent before may answer from a
        // master that hangs since
        if (shard.masterUnanswered !== undefined && startedAt > shard.masterUnansweredAt) {
          this.logger.info(
            { master: shard.master.name },
            'master answers its probe again; reads use it again',
          );
          shard.masterUnanswered = undefined;
          shard.masterUnansweredSince = undefined;
        }
      })
      .catch((error: unknown) => {
        // not reached, or no answer in time; a pool busy with this instance's own calls, or an
        // answer this code could not read, says nothing of the master
        // a timeout only once the probe had its connection: one that waited for this process's
        // own busy pool (writes on row locks, a burst) says nothing of the master
        const unreached =
          (error instanceof ProbeTimeoutError && error.onServer) ||
          (error instanceof DependencyError && !error.busy);
        if (unreached) this.masterUnanswered(shard, `probe failed: ${(error as Error).message}`);
      });
    const replicas = shard.replicas.map(async (replica) => {
      const previous = replica.position && { position: replica.position, at: replica.positionAt };
      let pos: GtidPosition | undefined;
      let stopped: string | undefined;
      let paused: string | undefined;
      let rttMs = 0;
      try {
        const read = await this.probeNode(replica, 'replica');
        pos = read?.position;
        stopped = read?.stopped;
        paused = read?.paused;
        rttMs = read?.rttMs ?? 0;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (replica.health.state !== 'excluded')
          this.logger.warn({ replica: replica.name, err: reason }, 'replica probe failed');
        replica.health.fail(reason);
        return;
      }
      if (!pos) return; // previous probe still in flight
      replica.position = pos;
      replica.positionAt = ++this.probeClock;
      // judged against this round's master sample: at instance start the timeline is empty until
      // the master answers, and an empty timeline bounds no lag (a caught-up replica would wait a
      // round for nothing)
      await master;
      if (this.aheadOfMaster(shard, replica, previous)) {
        if (replica.health.state !== 'excluded') this.logger.warn({ replica: replica.name }, AHEAD_OF_MASTER);
        replica.health.fail(AHEAD_OF_MASTER, 'ahead_of_master');
        return;
      }
      // its replication stopped on an error (replication-stopped.ts): it will only fall further
      // behind, so it goes now, not once its lag passes the max (on an idle shard: never); its
      // lag judges it again once its threads run (re-admitted after `readmitProbes` good probes)
      if (stopped) {
        if (replica.health.state !== 'excluded' || replica.health.lastError !== stopped)
          this.logger.warn(
            { replica: replica.name, reason: stopped },
            'replica excluded: its replication stopped',
          );
        replica.health.fail(stopped, 'replication_stopped');
        return;
      }
      // never judged yet and not (yet) following this round's master sample: a foreign replica,
      // ahead of it or trailing it (binlog state), would be admitted for a round before the check
      // above can catch it (a review saw one read from); a busy master's own replica, read a
      // moment after the master, is admitted at one of its next probes
      const sample = shard.lastMaster;
      if (
        replica.health.state === 'unknown' &&
        sample &&
        !followsPosition(sample.position, pos, sample.state)
      )
        return;
      const before = replica.health.state;
      const { maxLagSeconds: max, maxLatencyMs } = this.config.current().replication;
      // while the master does not answer, its last sample, if recorded within a probe round
      // before it stopped, is not required: a crash may have cut its binlog's last event, which no replica will receive (an outside check saw the replica
      // excluded 5 s after such a crash and every read of the shard 503 for a minute, while it
      // held all the master had replicated). Earlier samples still count on the clock: a replica
      // stalled behind them is excluded as ever, whether the master is dead, or alive and only
      // unreachable from here (freezing the clock instead kept such a replica admitted however
      // stale it grew: a review)
      const lag = shard.timeline.lag(
        pos,
        this.now(),
        shard.masterUnansweredSince === undefined
          ? {}
          : { forgiveFrom: shard.masterUnansweredSince - this.probeIntervalMs - this.probeTimeoutMs },
      );
      const latency = slowProbe(rttMs, masterRttMs, maxLatencyMs);
      replica.health.observe(lag.seconds, max, {
        atLeast: lag.atLeast,
        ...(paused ? { note: paused } : {}),
        ...(latency === UNJUDGED ? { unjudged: true } : { slow: latency }),
      });
      if (replica.health.state !== before) {
        this.logger.info(
          {
            replica: replica.name,
            from: before,
            to: replica.health.state,
            lagSeconds: replica.health.lagSeconds,
            max,
            ...(replica.health.lastError ? { reason: replica.health.lastError } : {}),
          },
          'replica admission changed',
        );
      }
    });
    await Promise.all([master, ...replicas]);
    shard.timeline.prune(shard.replicas.flatMap((r) => (r.position ? [r.position] : [])));
  }

  /**
   * Whether the replica holds transactions its master does not (file comment): its previous
   * position, read before the master's newest probe began, is not contained in that probe's
   * position, or (MariaDB) names a server id and sequence number the master's binlog state does
   * not reach. Judged again at every probe that has such a pair; the last verdict holds between.
   */
  private aheadOfMaster(
    shard: ShardEntry<S>,
    replica: ReplicaEntry<S>,
    previous: { position: GtidPosition; at: number } | undefined,
  ): boolean {
    const master = shard.lastMaster;
    if (previous && master && previous.at < master.startedAt) {
      replica.diverged = !followsPosition(master.position, previous.position, master.state);
    }
    return replica.diverged;
  }

  /**
   * undefined when a probe of this node is still in flight; throws when the probe fails. A
   * replica is also asked, after its position and within the same timeout, whether its
   * replication stopped on an error (`stopped`, NodeSession.replicationStopped).
   */
  private async probeNode(
    entry: MasterEntry<S>,
    role: 'master' | 'replica',
  ): Promise<
    | {
        position: GtidPosition;
        rttMs: number;
        state?: ReadonlyMap<string, bigint>;
        stopped?: string;
        paused?: string;
      }
    | undefined
  > {
    if (entry.probing || this.closed) return undefined;
    entry.probing = true;
    let cancel = () => {};
    let onServer = false;
    const probe = entry.node
      .run(async (session) => {
        onServer = true;
        // the round trip of one query on a connection it holds (no pool wait), judged against
        // `replication/max_latency_ms` for a replica (probeShard). Less the time this process
        // did not run (a SIGSTOP, a VM pause) and, where the runtime tells it, only the time the
        // event loop waited idle for the answer: a loop blocked by other work after the master's
        // answer came in was charged to the replicas alone, and a 200 ms block twice excluded
        // every replica of a shard at once (a review)
        const sentAt = performance.now();
        const idleBefore = this.loopIdleMs?.();
        const text = await session.position(role);
        const answeredAt = performance.now();
        let rttMs = answeredAt - sentAt - stalledMs(sentAt, answeredAt);
        if (idleBefore !== undefined) rttMs = Math.min(rttMs, this.loopIdleMs!() - idleBefore);
        const position = parseGtid(session.flavour, text);
        if (!position) throw new Error(`unparseable GTID position "${text.slice(0, 80)}"`);
        // read after the position: it holds at least what the position names. One that fails or
        // does not parse leaves the state unknown (sequence numbers alone judge), not the probe
        let state: ReadonlyMap<string, bigint> | undefined;
        if (role === 'master' && session.binlogState) {
          const text = await session.binlogState().catch((error: unknown) => {
            if (error instanceof DependencyError) throw error;
            return undefined;
          });
          state = text === undefined ? undefined : parseBinlogState(text);
          if (text !== undefined && !state)
            this.logger.warn(
              { master: entry.name, state: text.slice(0, 80) },
              'unparseable gtid_binlog_state',
            );
        }
        // what it throws fails the probe (the node did not answer); undefined when it cannot tell
        const stopped = role === 'replica' ? await session.replicationStopped?.() : undefined;
        const paused = role === 'replica' ? session.replicationPaused?.() : undefined;
        return {
          position,
          rttMs,
          ...(state ? { state } : {}),
          ...(stopped ? { stopped } : {}),
          ...(paused ? { paused } : {}),
        };
      })
      .finally(() => {
        entry.probing = false;
      });
    // stall-aware: a probe whose answer waited on the socket while this process did not run is
    // no fault of the node
    const timeout = new Promise<never>((_, reject) => {
      cancel = stallAwareTimeout(
        () => reject(new ProbeTimeoutError(this.probeTimeoutMs, onServer)),
        this.probeTimeoutMs,
      );
    });
    probe.catch(() => {}); // a probe abandoned by the timeout must not surface as unhandled
    try {
      return await Promise.race([probe, timeout]);
    } finally {
      cancel();
    }
  }

  status(): ShardStatus[] {
    return [...this.shards.values()].map((s) => ({
      id: s.id,
      master: {
        name: s.master.name,
        node: s.master.node.key,
        ...(s.masterUnanswered === undefined ? {} : { unanswered: s.masterUnanswered }),
      },
      replicas: s.replicas.map((r) => ({
        name: r.name,
        node: r.node.key,
        weight: r.weight,
        state: r.health.state,
        lagSeconds: Number.isFinite(r.health.lagSeconds) ? r.health.lagSeconds : null,
        lastError: r.health.lastError,
        ...(r.health.cause === undefined ? {} : { cause: r.health.cause }),
      })),
    }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    clearInterval(this.timer);
    for (const shard of this.shards.values()) this.teardown(shard);
    this.shards.clear();
  }

  private entry(shardId: string): ShardEntry<S> {
    const shard = this.shards.get(shardId);
    if (!shard) throw new DependencyUnavailableError(`shard:${shardId}`, 'shard is not configured');
    return shard;
  }

  /** Build shards that are new or changed, tear down removed ones. Keeps health of unchanged replicas. */
  private sync(configs: ReadonlyMap<string, ShardConfig>): void {
    if (this.closed) return;
    for (const [id, config] of configs) {
      const raw = JSON.stringify(config);
      const old = this.shards.get(id);
      if (old?.raw === raw) continue;
      const next = this.build(id, config, raw, old);
      this.shards.set(id, next);
      if (old) this.teardown(old);
      this.logger.info(
        { shard: id, master: next.master.node.key, replicas: next.replicas.map((r) => r.node.key) },
        old ? 'shard changed; nodes rebuilt' : 'shard added',
      );
    }
    for (const [id, shard] of this.shards) {
      if (configs.has(id)) continue;
      this.shards.delete(id);
      this.teardown(shard);
      this.logger.info({ shard: id }, 'shard removed');
    }
    this.guard.retain?.(
      new Set([...this.shards.values()].flatMap((s) => [s.master.name, ...s.replicas.map((r) => r.name)])),
    );
  }

  private build(id: string, config: ShardConfig, raw: string, old: ShardEntry<S> | undefined): ShardEntry<S> {
    const spec = (host: string, port: number): NodeSpec => ({
      host,
      port,
      database: config.database,
      passwordEnv: config.passwordEnv,
    });
    const masterSpec = spec(config.master.host, config.master.port);
    const masterName = `mysql-master:${id}`;
    const sameMaster = old && nodeSpecKey(old.master.spec) === nodeSpecKey(masterSpec);
    const replicas = config.replicas.map((r, i): ReplicaEntry<S> => {
      const rSpec = spec(r.host, r.port);
      const name = `mysql-replica:${id}:${i + 1}`;
      const kept = old?.replicas.find((o) => o.name === name && nodeSpecKey(o.spec) === nodeSpecKey(rSpec));
      return {
        name,
        spec: rSpec,
        node: this.guard.wrap(this.nodes.acquire(rSpec), { name, kind: 'mysql-replica', shardId: id }),
        probing: false,
        weight: r.weight,
        health: kept?.health ?? new ReplicaHealth({ readmitProbes: this.readmitProbes }),
        position: kept?.position,
        positionAt: kept?.positionAt ?? 0,
        // judged again against a new master
        diverged: (sameMaster && kept?.diverged) || false,
        schemaWarnings: kept?.schemaWarnings ?? new WarnLimiter(this.logger, SCHEMA_WARN_EVERY_MS, this.now),
        timeLimitWarnings:
          kept?.timeLimitWarnings ?? new WarnLimiter(this.logger, SCHEMA_WARN_EVERY_MS, this.now),
      };
    });
    return {
      id,
      raw,
      master: {
        name: masterName,
        spec: masterSpec,
        node: this.guard.wrap(this.nodes.acquire(masterSpec), {
          name: masterName,
          kind: 'mysql-master',
          shardId: id,
        }),
        probing: false,
      },
      replicas,
      // a new master is compared with the old one's last position and the writes this instance
      // committed there: one that lacks them went back (a failover's lost writes are newer than
      // the last probe sample)
      timeline: sameMaster ? old.timeline : new MasterTimeline(undefined, lastKnown(old)),
      committed: sameMaster ? old.committed : undefined,
      lastMaster: sameMaster ? old.lastMaster : undefined,
      masterUnanswered: sameMaster ? old.masterUnanswered : undefined,
      masterUnansweredAt: sameMaster ? old.masterUnansweredAt : 0,
      masterUnansweredSince: sameMaster ? old.masterUnansweredSince : undefined,
    };
  }

  /**
   * The shard's master answered a position that does not contain the one seen before it (the
   * last sample of its timeline, or of the previous master's on a master change): its history
   * went back. The timeline restarted from it (master-timeline.ts); said at error level, as
   * writes answered before may be gone, and told to `onHistoryReset` (the read cache forgets the
   * shard: its version keys hold positions the new history numbers again).
   */
  private historyWentBack(shard: ShardEntry<S>, from: GtidPosition, to: GtidPosition): void {
    // the writes committed on the history left are not the new one's: a later master change is
    // compared with this history only (kept, a clean set-master afterwards read as another reset)
    shard.committed = undefined;
    this.logger.error(
      { shard: shard.id, master: shard.master.name, from: gtidText(from), to: gtidText(to) || '(empty)' },
      "the shard master's GTID position went back (RESET MASTER, a restore from a backup, or a new master without the last writes of the old one): writes answered before it may be gone; replica lag is measured from now, the shard's cache is cleared",
    );
    this.onHistoryReset?.(shard.id);
  }

  private teardown(shard: ShardEntry<S>): void {
    this.nodes.release(shard.master.spec);
    for (const r of shard.replicas) this.nodes.release(r.spec);
  }
}

/** how many times its master's round trip a replica's must be to be slow (see slowProbe) */
export const SLOWER_THAN_MASTER = 3;

/** slowProbe's verdict on a round with no master answer to compare with */
export const UNJUDGED = Symbol('unjudged');

/**
 * Why a replica's probe was slow, or undefined when it was not: its round trip (`rttMs`, one
 * query on a held connection, this process's own stalls and busy time taken off: probeNode) over
 * `maxLatencyMs` (`replication/max_latency_ms`; 0 turns this off) and over SLOWER_THAN_MASTER
 * times this round's master probe's (`masterRttMs`). Against the master because the master is
 * where its reads would go: a shard whose nodes are all far away has no nearer node to read
 * from. Over the limit in a round without a master answer: UNJUDGED (no streak moves).
 */
export function slowProbe(
  rttMs: number,
  masterRttMs: number | undefined,
  maxLatencyMs: number,
): string | typeof UNJUDGED | undefined {
  if (maxLatencyMs <= 0 || rttMs <= maxLatencyMs) return undefined;
  if (masterRttMs === undefined) return UNJUDGED;
  if (rttMs <= SLOWER_THAN_MASTER * masterRttMs) return undefined;
  return `probe answered in ${Math.round(rttMs)} ms, over replication/max_latency_ms (${maxLatencyMs} ms) and ${SLOWER_THAN_MASTER}× the master's ${Math.round(masterRttMs)} ms`;
}
