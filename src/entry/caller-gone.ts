/**
 * Services.callerGone for Node: whether the answer to `incoming` can no longer be delivered.
 * True once its socket is destroyed (reset, or closed both ways) or the peer closed its side:
 * Node's HTTP server (httpAllowHalfOpen off, its default) ends the socket as soon as it reads the
 * peer's FIN, so an answer written after that is lost too. A request that never had a socket
 * (built in a test) is never taken for gone.
 *
 * Also true, at a write's last check before its COMMIT and within AFTER_STALL_MS of a stall of
 * this process (stall-watch.ts), when the kernel no longer knows the peer: a connection reset
 * (HAProxy resets its connection to an instance after `timeout server`) fails getpeername(2) with
 * ENOTCONN at once, while Node notices the reset only when it next reads the socket. After a
 * stall, writes ran to their COMMIT before that read: in bench/freeze-instance.ts runs, 9 checks
 * in the first 10 ms after a resume found sockets open by Node's flags whose peer was already
 * gone this way. The check before the COMMIT always asks: a paused VM may show no stall on the
 * monotonic clock. The earlier ones (before a write begins, before a password is hashed) ask only
 * after a stall: asked on every check (3 per write) it was 2.2 % of an instance's profile
 * samples under borrow + return, and a write they let through is stopped before its COMMIT.
 * Node caches `remoteAddress` after its first success, so the socket's handle is asked directly
 * (an internal of net.Socket; where it is missing, this check is skipped).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { AFTER_STALL_MS, stalledWithin } from '../resilience/stall-watch.js';

const afterAStall = () => stalledWithin(AFTER_STALL_MS);
/** for `callerGoneOf`: ask the kernel whatever the stalls (a write's check before its COMMIT) */
export const askKernel = () => true;

/** `afterStall`: whether the kernel is asked too (by default: within AFTER_STALL_MS of a stall) */
export function callerGoneOf(
  incoming: IncomingMessage | undefined,
  afterStall: () => boolean = afterAStall,
): boolean {
  const socket = incoming?.socket;
  if (!socket) return false;
  return (
    socket.destroyed || socket.readableEnded || !socket.writable || (afterStall() && peerUnknown(socket))
  );
}

interface PeerHandle {
  getpeername?: (out: object) => number;
}

/** getpeername(2) fails on the socket's file descriptor (0 is success, else a negative errno) */
function peerUnknown(socket: Socket): boolean {
  const handle = (socket as unknown as { _handle?: PeerHandle | null })._handle;
  if (typeof handle?.getpeername !== 'function') return false;
  return handle.getpeername({}) !== 0;
}
