/**
 * Starts an entry of the product (`src/entry/*.ts`) from source (`node --import tsx`), so a test
 * checks the code as it is, not a `dist/` of an earlier build. Its dependencies point at a closed
 * port unless `env` says otherwise: listeners come up and the environment is checked before
 * etcd, Redis or RabbitMQ answer, so such a test needs nothing of the local stack and leaves it
 * alone. `stopStartedEntries` (in an afterEach) SIGKILLs what is still running.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { REPO_ROOT } from '../../stack/paths.js';

/** a port nothing listens on: the dependencies of the started processes are "down" */
export const CLOSED = 'http://127.0.0.1:1';

const started: ChildProcess[] = [];

export function stopStartedEntries(): void {
  for (const child of started.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
}

/** `env` is merged over a minimal valid one; a value `undefined` leaves that variable unset */
export function startEntry(
  entry: string,
  env: Record<string, string | undefined>,
): { child: ChildProcess; stderr: () => string; exited: () => Promise<number | null> } {
  const merged: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    SHARDGATE_ETCD_ENDPOINTS: CLOSED,
    SHARDGATE_REDIS_URL: CLOSED.replace('http', 'redis'),
    SHARDGATE_AMQP_URL: CLOSED.replace('http', 'amqp'),
    SHARDGATE_JWT_SECRET: 'start-entry-test-secret-of-at-least-32-chars',
    SHARDGATE_DB_PASSWORD: '',
    LOG_LEVEL: 'silent',
    ...env,
  };
  for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: merged,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  started.push(child);
  let err = '';
  child.stderr!.on('data', (d) => {
    err += String(d);
  });
  const exited = () =>
    new Promise<number | null>((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once('exit', (c) => resolve(c));
    });
  return { child, stderr: () => err, exited };
}
