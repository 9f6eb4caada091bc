/**
 * A database node tried beside its open breaker. An open breaker refuses every call to its node,
 * the shard router's probes included, so nothing finds out that the node answers again until
 * `reset_timeout_ms` (5 s by default) has passed: an outside check (a TCP proxy in front of a
 * shard master refusing, resetting, then blackholing connections) saw the first write pass
 * 3.1–5.5 s after the path had healed. The Redis cache and the email worker already shorten
 * such a spell when their client connects again (CircuitBreaker.connectionRestored); this does
 * the same for a MariaDB node: on each probe round (`maybeTry`, every second), while the breaker
 * is open, a connection of its own is opened to the node (`connect`: handshake and one round
 * trip, no slot of the pool) — not through the breaker and not counted by it.
 *
 * - **Failed, then answered.** An answer calls `connectionRestored(reason)` only when an earlier
 *   attempt failed on the path (`timed_out`, `unreachable`: BesideOutcome) since the last answer
 *   (or since the breaker was last seen closed): a connection that answers disproves a failure
 *   only where connections failed. An error packet of the server (`server_error`: its limit on
 *   connections, a blocked host) or a socket this process could not open (`local`) is no such
 *   failure: a second review saw a master under a global read lock half-open early at 4 of 4
 *   spells while another client kept its `max_connections` nearly full, when any failure
 *   counted. Any answer clears the failure, whatever the breaker's state then. A node whose
 *   connections answer all along while its calls fail — a global read lock, `read_only`, a
 *   statement time limit, a table or metadata lock, an overloaded server — is left to
 *   `reset_timeout_ms`: a review measured a master under FLUSH TABLES WITH READ LOCK with a 1 s
 *   `max_statement_time` (writes failing as "ended at the time limit", not as hung writes)
 *   reopened every ~4 s instead of 7 s, 57 writes sent to it in 25 s instead of 35, when any
 *   answer counted. The same rule covers a breaker opened on writes (an earlier version skipped
 *   those, and a blackholed path under write load — its writes timing out first — recovered only
 *   after the whole reset time, 14.2 s with 15 s).
 * - **One at a time, and fewer while they time out.** At most one attempt in flight; one per
 *   BESIDE_EVERY_MS, doubled after each attempt that ran out its time (`timed_out`, told by the
 *   adapter from the error, not from the time elapsed, which a busy event loop inflates; up to
 *   BESIDE_MAX_EVERY_MS) and back to it at any other outcome but `local` (a long silence ending
 *   in refusals was found 3.6 s late when only an answer reset it). A server frozen (SIGSTOP) or overloaded
 *   keeps each attempt in its listen queue and counts it as an aborted connect when it resumes; one a second over a long
 *   freeze could reach `max_connect_errors` and get this host blocked (error 1129, a review: 21
 *   aborted connects against 9 over a 30 s freeze with the limit at 10). A refusal or reset is
 *   not slowed down: it costs the server nothing.
 * - An attempt is bounded by `withinMs` (the router's probe timeout, 1.5 s): `connect` gives up
 *   then; a failed one logs nothing (the breaker logged its opening, its trials log what they
 *   find); an answered connection is closed with COM_QUIT, not reset.
 * - The floor of max(1 s, `call_timeout_ms`) is kept (CircuitBreaker.openForMs): the calls in
 *   flight when it opened have ended by then, and a path that flaps within a second (a proxy
 *   resetting some connections) does not close the breaker into the next failure. The cost: an
 *   outage shorter than 2 s still keeps writes refused until 2 s after the breaker opened.
 * - The state lives as long as the breaker (besideBreakerOf): the router wraps a node again at
 *   every change of the shard map, and a fresh state each time let two attempts overlap.
 *
 * Runtime-neutral: `connect` is the adapter's (SqlNode.connectBeside).
 */

/** the least time between two attempts on one node: about one per probe round (1 s), a timer's jitter allowed */
export const BESIDE_EVERY_MS = 900;
/** the most time between two attempts while they time out */
export const BESIDE_MAX_EVERY_MS = 8000;

/**
 * What an attempt found (the adapter tells, db/beside-outcome.ts for MariaDB): `answered`; the
 * path failed — `timed_out` (silent within the bound), `unreachable` (refused, reset, lost); or
 * no verdict on the path — `server_error` (the server answered with an error packet), `local`
 * (this process could not open a socket).
 */
export type BesideOutcome = 'answered' | 'timed_out' | 'unreachable' | 'server_error' | 'local';

/** what of its breaker an attempt reads and tells (CircuitBreaker) */
export interface BesideBreakerTarget {
  readonly state: 'closed' | 'open' | 'half_open';
  connectionRestored(reason: string): void;
}

export class BesideBreaker {
  private inFlight = false;
  private lastAt = Number.NEGATIVE_INFINITY;
  private everyMs = BESIDE_EVERY_MS;
  /** an attempt failed on the path since the last answer, or since the breaker was seen closed */
  private sawFailure = false;
  private lastFailure: 'timed_out' | 'unreachable' = 'unreachable';

  constructor(
    private readonly breaker: BesideBreakerTarget,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** see the file comment; never throws, never waits */
  maybeTry(withinMs: number, connect: (withinMs: number) => Promise<BesideOutcome>): void {
    if (this.breaker.state === 'closed') {
      this.sawFailure = false;
      this.everyMs = BESIDE_EVERY_MS;
    }
    if (this.inFlight || this.breaker.state !== 'open') return;
    const now = this.now();
    if (now - this.lastAt < this.everyMs) return;
    this.lastAt = now;
    this.inFlight = true;
    let attempt: Promise<BesideOutcome>;
    try {
      attempt = connect(withinMs);
    } catch {
      attempt = Promise.resolve('unreachable');
    }
    attempt
      .catch((): BesideOutcome => 'unreachable')
      .then((outcome) => this.found(outcome))
      .finally(() => {
        this.inFlight = false;
      });
  }

  private found(outcome: BesideOutcome): void {
    // a socket this process could not open says nothing of the node: the spacing stays
    if (outcome === 'local') return;
    this.everyMs =
      outcome === 'timed_out' ? Math.min(this.everyMs * 2, BESIDE_MAX_EVERY_MS) : BESIDE_EVERY_MS;
    if (outcome === 'timed_out' || outcome === 'unreachable') {
      this.sawFailure = true;
      this.lastFailure = outcome;
      return;
    }
    if (outcome !== 'answered') return;
    const failed = this.sawFailure;
    this.sawFailure = false;
    if (failed && this.breaker.state === 'open')
      this.breaker.connectionRestored(
        `a connection beside the open breaker was answered after one had failed (${this.lastFailure})`,
      );
  }
}

const besideOf = new WeakMap<BesideBreakerTarget, BesideBreaker>();

/** the one BesideBreaker of `breaker`, made at the first ask (its state outlives the node's wraps) */
export function besideBreakerOf(breaker: BesideBreakerTarget): BesideBreaker {
  let beside = besideOf.get(breaker);
  if (!beside) {
    beside = new BesideBreaker(breaker);
    besideOf.set(breaker, beside);
  }
  return beside;
}
