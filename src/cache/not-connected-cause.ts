/**
 * Why a Redis command failed without being sent: a client of `failFastRedisOptions` fails every
 * command at once while it is not connected ("Stream isn't writeable…"), which names no cause.
 * `notConnectedCause(redis)` answers the function that gives such an error back with its cause:
 *
 * - When the client's last connection attempt failed because this process is out of file
 *   descriptors (EMFILE, or ENFILE: the socket never opened), that is the failure, and it is this
 *   process's, not Redis's: the error is given back as an AggregateError of it and the connect
 *   error, so the breaker counts neither failure nor success and the caller is told the instance
 *   is short (resilience/own-resources.ts). Before, an instance out of descriptors whose Redis
 *   connection had dropped counted each such command against the `redis` breaker and opened it.
 *   The connect error is forgotten when the client is ready again or a later attempt fails
 *   otherwise.
 * - Within RECONNECT_GRACE_MS of a connection dropping that had been ready for STABLE_MS (a
 *   `CLIENT KILL`, a reset), until a reconnect attempt fails: the error is given back as a
 *   DependencyError `busy`, which the breaker also counts as neither (the command was not sent,
 *   and a connection that comes back at once says nothing against Redis). Such a drop is opened
 *   again at once (`reconnectAtOnce`, read by `failFastRedisOptions`' retryStrategy), so this
 *   lasts the few ms of a new handshake. At most one grace per GRACE_SPACING_MS, none for a
 *   connection this process replaced as hung (`forgoNextGrace`): a server that drops every
 *   connection just after its handshake (client eviction, a proxy, a `CLIENT KILL` loop) gets
 *   the backoff and is counted, where a grace on every drop reconnected ~250 times a second and
 *   hid the outage from the breaker (a review). Before, every command in the 100 ms until the first reconnect counted: under
 *   1,000 cached reads/s on one instance a single `CLIENT KILL` opened the breaker, and ~450
 *   reads went to the database in the second before it closed. A Redis that is down fails the
 *   first reconnect at once (refused) and the next commands count; one that does not answer
 *   counts from the grace's end. A command that failed while the client was connected (a
 *   command in flight at the drop included, once the drop is seen) is given back unchanged
 *   outside those two cases.
 */
import type { Redis } from 'ioredis';
import { DependencyError } from '../resilience/errors.js';
import { ownResourceShortage } from '../resilience/own-resources.js';

/** gives a command's error back with why the client was not connected (see above) */
export interface NotConnectedCause {
  (error: unknown): unknown;
  /** whether the connection dropping now earns a grace: read by the retryStrategy, to reopen it at once */
  reconnectAtOnce(): boolean;
  /** the next drop is this process's own (a hung connection replaced): no grace for it */
  forgoNextGrace(): void;
}

/** how long after a ready connection dropped its client's refusals count for neither side */
export const RECONNECT_GRACE_MS = 500;
/** how long a connection must have been ready for its drop to earn a grace */
export const STABLE_MS = 1000;
/** at most one grace in this long */
export const GRACE_SPACING_MS = 5000;

export function notConnectedCause(
  redis: Redis,
  {
    graceMs = RECONNECT_GRACE_MS,
    stableMs = STABLE_MS,
    spacingMs = GRACE_SPACING_MS,
    now = () => performance.now(),
  }: { graceMs?: number; stableMs?: number; spacingMs?: number; now?: () => number } = {},
): NotConnectedCause {
  let shortage: Error | undefined;
  /** when the connection was last ready, while it is (this listener's view) */
  let readyAt: number | undefined = redis.status === 'ready' ? now() : undefined;
  let lastGraceAt = Number.NEGATIVE_INFINITY;
  let forgo = false;
  /** what `reconnectAtOnce` answered for the drop whose close event is still to come */
  let decided: boolean | undefined;
  /** when the ready connection dropped, while no reconnect attempt has failed since */
  let droppedAt: number | undefined;
  // asked by the retryStrategy (ioredis calls it in its close handler, before the `close` event
  // reaches the listener below) and by that listener: the same answer both times
  const earnsGrace = () =>
    !forgo && readyAt !== undefined && now() - readyAt >= stableMs && now() - lastGraceAt >= spacingMs;
  redis.on('error', (error: unknown) => {
    shortage = error instanceof Error && ownResourceShortage(error) ? error : undefined;
    // an error of the ready connection itself (a reset) comes before its close; one after is an
    // attempt to reconnect that failed
    if (readyAt === undefined) droppedAt = undefined;
  });
  redis.on('ready', () => {
    shortage = undefined;
    readyAt = now();
    droppedAt = undefined;
    // a replacement asked while reconnecting closes nothing: it must not outlive the handshake
    forgo = false;
  });
  redis.on('close', () => {
    // decided once, when ioredis asked (its retryStrategy runs before this event), else here
    const grace = decided ?? earnsGrace();
    decided = undefined;
    if (grace) {
      droppedAt = now();
      lastGraceAt = droppedAt;
    } else droppedAt = undefined;
    readyAt = undefined;
    forgo = false;
  });
  const cause = (error: unknown): unknown => {
    if (redis.status === 'ready' || ownResourceShortage(error)) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (shortage !== undefined)
      return new AggregateError([error, shortage], `${message} (connecting failed: ${shortage.message})`);
    if (droppedAt !== undefined && now() - droppedAt < graceMs)
      return new DependencyError('redis', `${message} (reconnecting: the connection dropped just now)`, {
        busy: true,
        cause: error,
      });
    return error;
  };
  return Object.assign(cause, {
    reconnectAtOnce: () => {
      decided = earnsGrace();
      return decided;
    },
    forgoNextGrace: () => {
      forgo = true;
    },
  });
}
