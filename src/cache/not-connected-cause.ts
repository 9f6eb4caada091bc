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
 * - Within RECONNECT_GRACE_MS of a ready connection dropping (a `CLIENT KILL`, a reset, a hung
 *   connection replaced), until a reconnect attempt fails: the error is given back as a
 *   DependencyError `busy`, which the breaker also counts as neither (the command was not sent,
 *   and a connection that comes back at once says nothing against Redis). The client reconnects
 *   at once after a drop (`failFastRedisOptions`' retryStrategy), so this lasts the few ms of a
 *   new handshake. Before, every command in the 100 ms until the first reconnect counted: under
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

export type NotConnectedCause = (error: unknown) => unknown;

/** how long after a ready connection dropped its client's refusals count for neither side */
export const RECONNECT_GRACE_MS = 500;

export function notConnectedCause(
  redis: Redis,
  {
    graceMs = RECONNECT_GRACE_MS,
    now = () => performance.now(),
  }: { graceMs?: number; now?: () => number } = {},
): NotConnectedCause {
  let shortage: Error | undefined;
  let ready = redis.status === 'ready';
  /** when the ready connection dropped, while no reconnect attempt has failed since */
  let droppedAt: number | undefined;
  redis.on('error', (error: unknown) => {
    shortage = error instanceof Error && ownResourceShortage(error) ? error : undefined;
    // an error of the ready connection itself (a reset) comes before its close; one after is an
    // attempt to reconnect that failed
    if (!ready) droppedAt = undefined;
  });
  redis.on('ready', () => {
    shortage = undefined;
    ready = true;
    droppedAt = undefined;
  });
  redis.on('close', () => {
    if (ready) droppedAt = now();
    ready = false;
  });
  return (error) => {
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
}
