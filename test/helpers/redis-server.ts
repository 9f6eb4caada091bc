/**
 * A redis-server of a test's own (no persistence), for tests that kill and start it again while
 * an instance is connected to it: the stack's Redis is left alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { binary } from '../../stack/preflight.js';
import { waitFor } from './wait-for.js';

export function startRedis(port: number): ChildProcess {
  return spawn(
    binary('redis-server'),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
}

/** resolves once the redis-server on `port` answers PING (within 10 s) */
export async function redisAnswers(port: number): Promise<void> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  probe.on('error', () => {}); // refused until the server listens
  try {
    await waitFor(async () => (await probe.ping().catch(() => '')) === 'PONG', {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: "the test's redis-server answering",
    });
  } finally {
    probe.disconnect();
  }
}
