/**
 * What a connection tried beside an open breaker found (SqlNode.connectBeside,
 * routing/beside-breaker.ts BesideOutcome), from the way mysql2 and Node's sockets fail:
 * - `answered`: handshake and one round trip done;
 * - `timed_out`: no answer within the bound (our deadline, or mysql2's `connectTimeout`,
 *   `ETIMEDOUT`): the node or its path is silent;
 * - `unreachable`: the path failed at once (refused, reset, unreachable, the connection lost);
 * - `server_error`: the server answered with an error packet (1040 too many connections, 1129
 *   host blocked, 1045 access denied, …): it is alive, which says nothing of why calls fail —
 *   a review saw a master under a global read lock half-open early at every spell once another
 *   client kept its `max_connections` nearly full, when any failure counted;
 * - `local`: this process could not open a socket (EMFILE, ENFILE, no buffer or local port):
 *   nothing about the node.
 */
import type { BesideOutcome } from '../routing/beside-breaker.js';

const LOCAL_CODES = new Set(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);

/** `deadlineMessage`: the message of the bound's own rejection (withDeadline) */
export function besideOutcomeOf(error: unknown, deadlineMessage: string): Exclude<BesideOutcome, 'answered'> {
  const e = (error ?? {}) as { code?: unknown; sqlState?: unknown; message?: unknown };
  if (typeof e.sqlState === 'string') return 'server_error';
  if (e.message === deadlineMessage || e.code === 'ETIMEDOUT') return 'timed_out';
  if (typeof e.code === 'string' && LOCAL_CODES.has(e.code)) return 'local';
  return 'unreachable';
}
