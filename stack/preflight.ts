/**
 * Checks before `up` touches anything:
 * - every binary the stack runs exists, else ONE line naming the Debian packages to install;
 * - no process the stack did not start holds one of the ports it is about to use, else one line
 *   per port naming the process that holds it (the stack never kills what it did not start).
 * `npm test` additionally needs docker-compose (to validate docker/compose.yml), iproute2 (`ss`)
 * and faketime (the clock tests preload its libfaketime).
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { portOpen } from './probes.js';

/** What the local stack needs from Debian (mariadb-server pulls mariadb-client). */
export const STACK_PACKAGES = [
  'etcd-server',
  'etcd-client',
  'haproxy',
  'mariadb-server',
  'mariadb-client',
  'redis-server',
  'rabbitmq-server',
];

interface Binary {
  name: string;
  paths: string[];
  pkg: string;
}

const STACK_BINARIES: Binary[] = [
  { name: 'etcd', paths: ['/usr/bin/etcd'], pkg: 'etcd-server' },
  { name: 'etcdctl', paths: ['/usr/bin/etcdctl'], pkg: 'etcd-client' },
  { name: 'haproxy', paths: ['/usr/sbin/haproxy', '/usr/bin/haproxy'], pkg: 'haproxy' },
  { name: 'mariadbd', paths: ['/usr/sbin/mariadbd', '/usr/bin/mariadbd'], pkg: 'mariadb-server' },
  { name: 'mariadb-install-db', paths: ['/usr/bin/mariadb-install-db'], pkg: 'mariadb-server' },
  { name: 'mariadb', paths: ['/usr/bin/mariadb'], pkg: 'mariadb-client' },
  { name: 'redis-server', paths: ['/usr/bin/redis-server'], pkg: 'redis-server' },
  { name: 'rabbitmq-server', paths: ['/usr/lib/rabbitmq/bin/rabbitmq-server'], pkg: 'rabbitmq-server' },
  { name: 'rabbitmqctl', paths: ['/usr/lib/rabbitmq/bin/rabbitmqctl'], pkg: 'rabbitmq-server' },
];
const TEST_BINARIES: Binary[] = [
  ...STACK_BINARIES,
  { name: 'docker-compose', paths: ['/usr/bin/docker-compose'], pkg: 'docker-compose' },
  { name: 'ss', paths: ['/usr/bin/ss', '/bin/ss'], pkg: 'iproute2' },
  // its libfaketime, preloaded by the clock tests (test/helpers/libfaketime.ts)
  { name: 'faketime', paths: ['/usr/bin/faketime'], pkg: 'faketime' },
];

/**
 * Absolute path of a binary the stack runs. Processes are spawned by absolute path: a non-root
 * user's PATH on Debian lacks /usr/sbin, where haproxy and mariadbd live.
 */
export function binary(name: string): string {
  const b = TEST_BINARIES.find((x) => x.name === name);
  const found = b?.paths.find((p) => existsSync(p));
  if (!found) throw new Error(`missing ${name}: apt-get install -y ${STACK_PACKAGES.join(' ')}`);
  return found;
}

function missing(binaries: Binary[]): Binary[] {
  return binaries.filter((b) => !b.paths.some((p) => existsSync(p)));
}

/** Names of the missing binaries (`forTests`: include what `npm test` needs too). */
export function missingBinaries({ forTests = false }: { forTests?: boolean } = {}): string[] {
  return missing(forTests ? TEST_BINARIES : STACK_BINARIES).map((b) => b.name);
}

/** Debian packages providing the missing binaries, deduplicated. */
export function missingPackages({ forTests = false }: { forTests?: boolean } = {}): string[] {
  return [...new Set(missing(forTests ? TEST_BINARIES : STACK_BINARIES).map((b) => b.pkg))];
}

/** Throws one line: `missing etcd, haproxy: apt-get install -y <every stack package>`. */
export function checkBinaries(): void {
  const names = missingBinaries();
  if (names.length > 0) {
    throw new Error(`missing ${names.join(', ')}: apt-get install -y ${STACK_PACKAGES.join(' ')}`);
  }
}

/** A unix socket path longer than sun_path (108 bytes incl. NUL) cannot be bound. */
export function checkSocketPaths(paths: string[]): void {
  const long = paths.filter((p) => Buffer.byteLength(p) > 107);
  if (long.length > 0) {
    throw new Error(`socket path too long for a unix socket (move the repository higher up): ${long[0]}`);
  }
}

/** One line per port in `ports` that some process already listens on. */
export async function foreignPortUsers(ports: number[]): Promise<string[]> {
  if (ports.length === 0) return [];
  let listing: string | undefined;
  try {
    listing = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    listing = undefined; // no iproute2: fall back to connecting
  }
  const lines: string[] = [];
  for (const port of [...new Set(ports)]) {
    if (listing !== undefined) {
      const row = listing.split('\n').find((l) => new RegExp(`:${port}\\s`).test(l));
      if (!row) continue;
      const proc = /users:\(\("([^"]+)",pid=(\d+)/.exec(row);
      lines.push(
        `port ${port} is taken by ${proc ? `${proc[1]} (pid ${proc[2]})` : 'another process'}, which this stack did not start`,
      );
    } else if (await portOpen(port)) {
      lines.push(`port ${port} is taken by a process this stack did not start`);
    }
  }
  return lines;
}
