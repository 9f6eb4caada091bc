/**
 * Logs what a Redis client's connection reports as an error (its `error` event): a refused or
 * reset connection, a failed ready check. Before, every client swallowed them. At most one line
 * per 30 s per connection (WarnLimiter, `repeatsSinceLast`), again at once after it was ready;
 * the error's message only, which names no credential (ioredis puts no password in it). Not
 * seen here: a server at its `maxclients` answers the handshake's first command with that error,
 * which ioredis drops, and reports only "Stream isn't writeable" for the ready check after.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';
import { WarnLimiter } from '../observability/warn-limiter.js';

export function logConnectionErrors(redis: Redis, logger: Logger | undefined, connection: string): void {
  const lines = logger ? new WarnLimiter(logger, 30_000) : undefined;
  redis.on('error', (error: unknown) => {
    lines?.warn(
      { connection, err: error instanceof Error ? error.message : String(error) },
      'redis connection error',
    );
  });
  redis.on('ready', () => lines?.reset());
}
