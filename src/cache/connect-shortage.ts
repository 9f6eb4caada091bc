/**
 * Why a Redis command failed without being sent: a client of `failFastRedisOptions` fails every
 * command at once while it is not connected ("Stream isn't writeable…"), which names no cause. When
 * its last connection attempt failed because this process is out of file descriptors (EMFILE, or
 * ENFILE: the socket never opened), that is the failure, and it is this process's, not Redis's:
 * the command's error is given back as an AggregateError of it and the connect error, so the
 * breaker counts neither failure nor success and the caller is told the instance is short
 * (resilience/own-resources.ts). Before, an instance out of descriptors whose Redis connection had
 * dropped counted each such command against the `redis` breaker and opened it.
 *
 * The connect error is forgotten when the client is ready again or a later attempt fails
 * otherwise; a command that failed while the client was connected is given back unchanged.
 */
import type { Redis } from 'ioredis';
import { ownResourceShortage } from '../resilience/own-resources.js';

export type WithConnectShortage = (error: unknown) => unknown;

export function connectShortage(redis: Redis): WithConnectShortage {
  let shortage: Error | undefined;
  redis.on('error', (error: unknown) => {
    shortage = error instanceof Error && ownResourceShortage(error) ? error : undefined;
  });
  redis.on('ready', () => {
    shortage = undefined;
  });
  return (error) => {
    if (shortage === undefined || redis.status === 'ready' || ownResourceShortage(error)) return error;
    const message = error instanceof Error ? error.message : String(error);
    return new AggregateError([error, shortage], `${message} (connecting failed: ${shortage.message})`);
  };
}
