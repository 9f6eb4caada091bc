/**
 * A database node tried beside its open breaker. An open breaker refuses every call to its node,
 * the shard router's probes included, so nothing finds out that the node answers again until
 * `reset_timeout_ms` (5 s by default) has passed: an outside check (a TCP proxy in front of a
 * shard master refusing, resetting, then blackholing connections) saw the first write pass
 * 3.1–5.5 s after the path had healed. The Redis cache and the email worker already shorten
 * such a spell when their client connects again (CircuitBreaker.connectionRestored); this does
 * the same for a MariaDB node: on each probe round (`maybeTry`, every second), while the breaker
 * is open, a connection of its own is opened to the node (`connect`: handshake and one round
 * trip, no slot of the pool) — not through the breaker and not counted by it. An answer calls
 * `connectionRestored(reason)`: the breaker turns half-open once it has been open
 * max(RESTORED_MIN_OPEN_MS, `call_timeout_ms`) (2 s for a master by default), and its trials
 * (reads, then a master's write trials) decide whether it closes.
 *
 * - at most one attempt in flight, and one per BESIDE_EVERY_MS: a node that hangs costs one
 *   socket, and a refused one one attempt a second (each a line in the server's log at most:
 *   `connect` closes an answered connection with COM_QUIT, not a reset);
 * - an attempt is bounded by `withinMs` (the router's probe timeout, 1.5 s): `connect` gives up
 *   then; a failed one changes nothing and logs nothing (the breaker logged its opening, and
 *   its trials log what they find);
 * - not while the breaker is open on writes (`openedOnWrites`: a master behind a global read
 *   lock, read-only, a full disk): its node answers connections all along, and half-opening it
 *   every 2 s instead of every 5 s would only hang a write trial more often;
 * - the floor of max(1 s, `call_timeout_ms`) is kept (CircuitBreaker.openForMs): the calls in
 *   flight when it opened have ended by then, and a path that flaps within a second (a proxy
 *   resetting some connections) does not close the breaker into the next failure. The cost: an
 *   outage shorter than 2 s still keeps writes refused until 2 s after the breaker opened.
 *
 * Runtime-neutral: `connect` is the adapter's (SqlNode.connectBeside).
 */

/** the least time between two attempts on one node: about one per probe round (1 s), a timer's jitter allowed */
export const BESIDE_EVERY_MS = 900;

/** what of its breaker an attempt reads and tells (CircuitBreaker) */
export interface BesideBreakerTarget {
  readonly state: 'closed' | 'open' | 'half_open';
  readonly openedOnWrites: boolean;
  connectionRestored(reason: string): void;
}

export class BesideBreaker {
  private inFlight = false;
  private lastAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly breaker: () => BesideBreakerTarget,
    private readonly connect: (withinMs: number) => Promise<void>,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** see the file comment; never throws, never waits */
  maybeTry(withinMs: number): void {
    if (this.inFlight) return;
    const breaker = this.breaker();
    if (breaker.state !== 'open' || breaker.openedOnWrites) return;
    const now = this.now();
    if (now - this.lastAt < BESIDE_EVERY_MS) return;
    this.lastAt = now;
    this.inFlight = true;
    let attempt: Promise<void>;
    try {
      attempt = this.connect(withinMs);
    } catch (error) {
      attempt = Promise.reject(error);
    }
    attempt
      .then(
        () => {
          // the breaker in force now (a node replaced meanwhile has a fresh one, closed)
          const current = this.breaker();
          if (current.state === 'open' && !current.openedOnWrites)
            current.connectionRestored('a connection beside the open breaker was answered');
        },
        () => {},
      )
      .finally(() => {
        this.inFlight = false;
      });
  }
}
