/**
 * Before `up`: every binary the stack runs must exist (else ONE line naming the Debian packages),
 * and no process the stack did not start may hold one of its ports.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const DEBIAN_PACKAGES =
  'etcd-server etcd-client haproxy mariadb-server mariadb-client redis-server rabbitmq-server';

const BINARIES: [name: string, paths: string[]][] = [
  ['etcd', ['/usr/bin/etcd']],
  ['etcdctl', ['/usr/bin/etcdctl']],
  ['haproxy', ['/usr/sbin/haproxy', '/usr/bin/haproxy']],
  ['mariadbd', ['/usr/sbin/mariadbd', '/usr/bin/mariadbd']],
  ['mariadb-install-db', ['/usr/bin/mariadb-install-db']],
  ['mariadb', ['/usr/bin/mariadb']],
  ['redis-server', ['/usr/bin/redis-server']],
  ['rabbitmq-server', ['/usr/lib/rabbitmq/bin/rabbitmq-server']],
];

export function missingBinaries(): string[] {
  return BINARIES.filter(([, paths]) => !paths.some((p) => existsSync(p))).map(([name]) => name);
}

export function checkBinaries(): void {
  const missing = missingBinaries();
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: apt-get install -y ${DEBIAN_PACKAGES}`);
  }
}

/** Lines naming each of `ports` that some process already listens on. */
export async function foreignPortUsers(ports: number[]): Promise<string[]> {
  if (ports.length === 0) return [];
  let out = '';
  try {
    out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const port of ports) {
    const row = out.split('\n').find((l) => new RegExp(`:${port}\\s`).test(l));
    if (row) {
      const proc = /users:\(\("([^"]+)",pid=(\d+)/.exec(row);
      lines.push(
        `port ${port} is taken by ${proc ? `${proc[1]} (pid ${proc[2]})` : 'another process'}, not started by this stack`,
      );
    }
  }
  return lines;
}
