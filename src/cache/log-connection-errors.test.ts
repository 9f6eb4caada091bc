import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { Logger } from '../observability/logger.js';
import { logConnectionErrors } from './log-connection-errors.js';
import { failFastRedisOptions } from './redis.js';

function capturingLogger() {
  const lines: { level: string; fields: Record<string, unknown>; msg?: string }[] = [];
  const at =
    (level: string) =>
    (fields: object, msg?: string): void => {
      lines.push({ level, fields: fields as Record<string, unknown>, msg });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return { logger, lines };
}

describe('logConnectionErrors', () => {
  it('logs a refused connection once however often the client retries, and again after it was ready', async () => {
    // a port with nothing behind it: every reconnect (each 20 ms) is refused
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const { logger, lines } = capturingLogger();
    const redis = new Redis(`redis://127.0.0.1:${port}`, {
      ...failFastRedisOptions({ commandTimeoutMs: 100 }),
      retryStrategy: () => 20,
    });
    logConnectionErrors(redis, logger, 'cache');
    try {
      await new Promise((r) => setTimeout(r, 400));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({
        level: 'warn',
        msg: 'redis connection error',
        fields: { connection: 'cache' },
      });
      expect(String(lines[0]!.fields.err)).toContain('ECONNREFUSED');
      // ready resets the limit: the next error is logged at once
      redis.emit('ready');
      redis.emit('error', new Error('Connection is closed.'));
      expect(lines).toHaveLength(2);
    } finally {
      redis.disconnect();
    }
  });
});
