/**
 * The seam between routing and the SQL driver. A `SqlNode` is one database server (a shard's
 * master or one replica) and `run` is THE one place every call to it passes: the router runs
 * probes, reads and write transactions through it, so a circuit breaker per node (issue 4) wraps
 * exactly `run` via `NodeGuard`. Sessions are adapter-specific (`S`): the MySQL adapter gives
 * repositories a drizzle handle on one dedicated connection; the router only needs the GTID calls.
 */
import type { BesideOutcome } from './beside-breaker.js';
import type { ServerFlavour } from './gtid.js';

export interface NodeSession {
  /** detected once per server with `SELECT VERSION()` */
  readonly flavour: ServerFlavour;
  /**
   * The server's replication position as text: MariaDB master `@@gtid_binlog_pos`, replica
   * `@@gtid_slave_pos`; MySQL `@@GLOBAL.gtid_executed` for both.
   */
  position(role: 'master' | 'replica'): Promise<string>;
  /**
   * MariaDB: the master's `@@gtid_binlog_state` (the last sequence number of every domain and
   * server id its binlog holds), so a replica's position can be told to come from it; undefined
   * where the flavour needs none (MySQL). Optional: a session without it is not asked.
   */
  binlogState?(): Promise<string | undefined>;
  /**
   * Why this replica's replication has stopped for good (a thread stopped by an error, e.g. the
   * SQL thread by a duplicate key 1062: replication-stopped.ts), or undefined: running, stopped
   * without an error (`STOP SLAVE`), retrying its master (`Connecting`), not a replica, or the
   * status not readable (the account lacks SLAVE MONITOR / REPLICATION CLIENT: the adapter then
   * stops asking). Throws when the node does not answer. Optional: a session without it is not
   * asked, and its replicas are judged by their lag alone.
   */
  replicationStopped?(): Promise<string | undefined>;
  /**
   * After `replicationStopped`: its threads stopped without an error (`STOP SLAVE`), in words, or
   * undefined. Only shown (the replica's `lastError` while its lag excludes it): the lag judges.
   */
  replicationPaused?(): string | undefined;
  /**
   * True once this server has applied `gtid` (MariaDB `MASTER_GTID_WAIT`, MySQL
   * `WAIT_FOR_EXECUTED_GTID_SET`), waiting at most `timeoutMs`; false on timeout.
   */
  waitFor(gtid: string, timeoutMs: number): Promise<boolean>;
  /**
   * Commits one write that touches no tenant data (a master's `breaker_probes` row of `probeId`):
   * the breaker's trial of a master whose writes hung. It waits where a write waits (a global
   * read lock, a full disk, a semi-sync acknowledgement) and fails where a write fails
   * (`read_only`).
   */
  probeWrite(probeId: string): Promise<void>;
}

export interface SqlNode<S extends NodeSession = NodeSession> {
  /** `host:port/database`, for logs */
  readonly key: string;
  /**
   * Runs `fn` on one connection of this node, released afterwards. Connection-level failures
   * (refused, timed out, lost, pool queue full) throw `DependencyUnavailableError`; SQL errors
   * and errors thrown by `fn` pass through unchanged.
   */
  run<T>(fn: (session: S) => Promise<T>, options?: RunOptions): Promise<T>;
  /**
   * Throws what `run` would throw at once without calling the node (its breaker is open);
   * returns when a call would be tried. Absent = always tried.
   */
  admit?(): void;
  /**
   * Opens a connection of its own to the node (never one of the pool's: callers lose no slot),
   * through its handshake and one round trip, and closes it; answers what it found (`answered`
   * within `withinMs`, or how it failed: BesideOutcome), never rejects (the connection given up
   * on is destroyed). For a node whose breaker is open, no call reaches it (beside-breaker.ts).
   * Absent: not supported.
   */
  connectBeside?(withinMs: number): Promise<BesideOutcome>;
  /**
   * Called on every probe round: while the node's breaker is open, tries `connectBeside` (at
   * most one attempt in flight, spaced as beside-breaker.ts says, within `withinMs`); an answer
   * after a failed attempt shortens the breaker's open spell (CircuitBreaker.connectionRestored).
   * Never throws, never waits. Absent: no breaker (passThroughGuard) or no `connectBeside`.
   */
  tryBesideBreaker?(withinMs: number): void;
}

export interface RunOptions {
  /**
   * Abandoning the call must stop it (a write transaction): when `signal` aborts, the connection
   * is closed at once, so `fn`'s next statement fails and one that starts after the abort is never
   * run, and its server thread is stopped (Node adapter: the statement it runs interrupted by its
   * query id, then the thread killed), including a batch the server holds whose COMMIT it has not
   * run yet. The call then fails with a CallStoppedError that says whether the write surely did
   * not apply (its statement before the COMMIT was interrupted) or may have (idle, in its COMMIT,
   * gone, or the server unreachable). The breaker guard supplies the signal of its call timeout
   * when `cancellable` is set, and answers the caller once the call settled (ABANDON_GRACE_MS at
   * most; past that, "may have applied").
   */
  signal?: AbortSignal;
  cancellable?: boolean;
  /**
   * How long the call may wait for a connection of a busy pool (every connection in use): the
   * breaker guard gives its call timeout less a margin (`acquireWithin`), so such a call fails as
   * `busy` (a DependencyError the breaker does not count) before the breaker's own timeout
   * would count it against the node. Absent: the pool's own acquire timeout.
   */
  acquireWithinMs?: number;
  /**
   * Told the node's own run of this call when it starts. Given up on by its breaker (answered
   * to the caller after ABANDON_GRACE_MS at most), that run settles only once the call's server
   * thread was stopped, or the stop given up on (twice the connect timeout): a caller that must
   * know no COMMIT of the call can land any more waits for it (routes/directory-bound-writes.ts).
   */
  track?: (run: Promise<unknown>) => void;
  /**
   * The tenant the call is for: its calls hold at most a share of the node's connections at
   * once, and wait beyond it for one of their own, never for another tenant's (Node adapter:
   * connection-shares.ts; bounded as a wait for a busy pool, then `busy`). Given by writes, whose
   * row-lock waits may hold a connection up to the call timeout. Absent: no share.
   */
  share?: string;
  /** told when the call has its connection and sends its first statement (its breaker's `sent`) */
  onSent?: () => void;
  /**
   * told when the call committed a transaction that wrote (its breaker's `committed`: the node
   * makes progress on writes). Node adapter: on MariaDB, a COMMIT whose OK packet carried a new
   * `last_gtid`; not on MySQL (a COMMIT there does not say whether it wrote)
   */
  onCommitted?: () => void;
}

export interface NodeSpec {
  host: string;
  port: number;
  database: string;
  /** env var holding this node's password; else SHARDGATE_DB_PASSWORD */
  passwordEnv?: string;
}

export function nodeSpecKey(spec: NodeSpec): string {
  return `${spec.host}:${spec.port}/${spec.database}${spec.passwordEnv ? `?${spec.passwordEnv}` : ''}`;
}

/**
 * The pool map: one pool per distinct NodeSpec, shared by every shard entry that names it and
 * closed (after a grace period for calls in flight) when the last holder releases it.
 */
export interface NodeSet<S extends NodeSession = NodeSession> {
  acquire(spec: NodeSpec): SqlNode<S>;
  release(spec: NodeSpec): void;
  close(): Promise<void>;
}

export type NodeKind = 'mysql-master' | 'mysql-replica';

export interface NodeIdentity {
  /** breaker name: `mysql-master:<shard>` or `mysql-replica:<shard>:<n>` (n = 1-based position in `replicas`) */
  name: string;
  kind: NodeKind;
  shardId: string;
}

/** Wraps every node the router builds; the breaker registry (issue 4) implements it. */
export interface NodeGuard {
  wrap<S extends NodeSession>(node: SqlNode<S>, identity: NodeIdentity): SqlNode<S>;
  /**
   * After every change of the shard map: `names` are the identities of every node now
   * configured; what the guard keeps for any other (a removed shard or replica) goes.
   */
  retain?(names: ReadonlySet<string>): void;
}

export const passThroughGuard: NodeGuard = { wrap: (node) => node };
