/** The connections a process holds to the stack's Redis, as `ss` lists them, and dropping them as Redis would. */
import { execFileSync } from 'node:child_process';
import { topology } from '../../stack/topology.js';

/** `ss` lines of the sockets `pid` holds to the stack's Redis, in `state` */
export function redisSockets(pid: number, state: 'established' | 'all'): string[] {
  return execFileSync('ss', ['-Htnp', 'state', state, `( dport = :${topology.redis.port} )`], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter((l) => l.includes(`pid=${pid},`));
}

/** the local ports of `pid`'s established connections to the stack's Redis */
export function redisLocalPorts(pid: number): string[] {
  return redisSockets(pid, 'established').map((l) => /:(\d+)\s+\S+:\d+\s/.exec(l)![1]!);
}

/** Redis drops each of those connections (`CLIENT KILL ADDR`), as a proxy restart or a timeout would */
export function killRedisConnections(localPorts: readonly string[]): void {
  for (const local of localPorts)
    execFileSync('redis-cli', [
      '-p',
      String(topology.redis.port),
      'CLIENT',
      'KILL',
      'ADDR',
      `127.0.0.1:${local}`,
    ]);
}
