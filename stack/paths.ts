/** Where the local stack keeps its state: `<repo>/.stack/` (git-ignored), resolved from this file. */
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { topology } from './topology.js';

/** repository root (works from stack/*.ts and from dist/stack/*.js) */
export const REPO_ROOT = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(dirname(here)) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');
})();

export const STATE_DIR = join(REPO_ROOT, topology.stateDir);
export const PID_DIR = join(STATE_DIR, 'pids');
export const LOG_DIR = join(STATE_DIR, 'logs');
export const MAIL_DIR = join(STATE_DIR, topology.smtp.mailDir);
export const HAPROXY_SOCKET = join(STATE_DIR, topology.haproxy.socket);
export const SECRETS_FILE = join(STATE_DIR, 'secrets.env');
/** held by `up` / `down` while they run (stack/lock.ts) */
export const LOCK_FILE = join(STATE_DIR, 'lock');
