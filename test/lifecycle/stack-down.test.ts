/**
 * Issue "Foundation", Done-when 1 (second half): `stack down` stops every process the stack
 * started — by pid — and leaves none behind: no recorded pid alive, no topology port listening.
 * With SHARDGATE_TEST_RESTORE_STACK=1 (the stack was up before `npm test`), it is brought back.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PID_DIR } from '../../stack/paths.js';
import { isAlive, portOpen } from '../../stack/process-manager.js';
import { topology } from '../../stack/topology.js';

function stackCli(args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
}

afterAll(() => {
  if (process.env.SHARDGATE_TEST_RESTORE_STACK === '1') stackCli(['up']);
});

describe('stack down', () => {
  it('stops exactly what it started and nothing is left behind', async () => {
    const pids = readdirSync(PID_DIR)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => Number(readFileSync(join(PID_DIR, f), 'utf8')));
    expect(pids.length).toBeGreaterThanOrEqual(12);
    expect(pids.every(isAlive)).toBe(true);
    // system services on their standard ports (MariaDB, Redis, RabbitMQ) must survive `down`
    const systemPorts = [3306, 6379, 5672];
    const systemBefore = await Promise.all(systemPorts.map((p) => portOpen(p)));

    stackCli(['down']);

    expect(pids.filter(isAlive)).toEqual([]);
    const ports = [
      topology.etcd.port,
      topology.redis.port,
      topology.rabbitmq.port,
      topology.smtp.port,
      topology.haproxy.port,
      topology.haproxy.statsPort,
      topology.worker.metricsPort,
      ...topology.apis.flatMap((a) => [a.port, a.agentPort]),
      ...topology.shards.flatMap((s) => [s.master.port, ...s.replicas.map((r) => r.port)]),
    ];
    const open = [];
    for (const p of ports) if (await portOpen(p)) open.push(p);
    expect(open).toEqual([]);
    expect(await Promise.all(systemPorts.map((p) => portOpen(p)))).toEqual(systemBefore);
  });
});
