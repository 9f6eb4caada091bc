/**
 * The stack's own Redis on :6380 (never the system one on :6379): a cache, so no persistence
 * (`--save ""`, no AOF); its working directory is `.stack/redis`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { startProcess } from './process-manager.js';
import { topology } from './topology.js';

export function startRedis(): number {
  const dir = join(STATE_DIR, 'redis');
  mkdirSync(dir, { recursive: true });
  return startProcess({
    name: topology.redis.name,
    command: binary('redis-server'),
    args: [
      '--port',
      String(topology.redis.port),
      '--bind',
      topology.host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ],
  });
}
