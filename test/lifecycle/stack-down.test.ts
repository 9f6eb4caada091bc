/**
 * Issue "Foundation": `stack down` stops every process the stack started — by pid, the whole
 * process group — and nothing else: afterwards no recorded pid is alive, no process listens on a
 * port of the topology, the system services on their standard ports are as they were, and the
 * data under `.stack/` is kept. A second `down` has nothing to do.
 * With SHARDGATE_TEST_RESTORE_STACK=1 (test/run.ts sets it when the stack was up before the run)
 * the stack is brought back up afterwards.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PID_DIR, STATE_DIR } from '../../stack/paths.js';
import { portOpen } from '../../stack/probes.js';
import { isAlive } from '../../stack/process-manager.js';
import { topology } from '../../stack/topology.js';
import { stackCli } from '../helpers/stack.js';

afterAll(() => {
  if (process.env.SHARDGATE_TEST_RESTORE_STACK === '1') stackCli(['up'], { timeoutMs: 300_000 });
});

const TOPOLOGY_PORTS = [
  topology.etcd.port,
  topology.etcd.peerPort,
  topology.redis.port,
  topology.rabbitmq.port,
  topology.rabbitmq.distPort,
  topology.smtp.port,
  topology.haproxy.port,
  topology.haproxy.statsPort,
  topology.worker.metricsPort,
  ...topology.apis.flatMap((a) => [a.port, a.agentPort]),
  ...topology.shards.flatMap((s) => [s.master.port, ...s.replicas.map((r) => r.port)]),
];
// the machine's own MariaDB, Redis and RabbitMQ: `down` must not touch them
const SYSTEM_PORTS = [3306, 6379, 5672];

function recordedPids(): Map<string, number> {
  return new Map(
    readdirSync(PID_DIR)
      .filter((f) => f.endsWith('.pid'))
      .map((f) => [f.slice(0, -4), Number(readFileSync(join(PID_DIR, f), 'utf8'))] as const),
  );
}

/** pids of the process groups led by `pids` (a group outlives its leader only as leftovers) */
function groupMembers(leaders: number[]): number[] {
  const set = new Set(leaders);
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (set.has(Number(fields[2])) && fields[0] !== 'Z') members.push(pid);
    } catch {
      /* exited meanwhile */
    }
  }
  return members;
}

describe('stack down', () => {
  it('stops exactly what it started and nothing is left behind', async () => {
    const pids = recordedPids();
    const expected = [
      topology.etcd.name,
      topology.redis.name,
      topology.rabbitmq.name,
      topology.smtp.name,
      topology.haproxy.name,
      ...topology.apis.map((a) => a.id),
      ...topology.shards.flatMap((s) => [s.master.name, ...s.replicas.map((r) => r.name)]),
    ];
    for (const name of expected) expect(pids.has(name), `${name} has a pid file`).toBe(true);
    expect([...pids].filter(([, pid]) => !isAlive(pid))).toEqual([]);
    const members = groupMembers([...pids.values()]);
    // every recorded pid leads its group (RabbitMQ's is the beam VM itself, stack/rabbitmq.ts)
    expect(members.length).toBeGreaterThanOrEqual(pids.size);
    const systemBefore = await Promise.all(SYSTEM_PORTS.map((p) => portOpen(p)));

    const out = stackCli(['down']);
    expect(out).toMatch(new RegExp(`stopped ${pids.size}: `));

    expect([...pids].filter(([, pid]) => isAlive(pid))).toEqual([]);
    expect(groupMembers([...pids.values()])).toEqual([]);
    const open: number[] = [];
    for (const p of TOPOLOGY_PORTS) if (await portOpen(p)) open.push(p);
    expect(open).toEqual([]);
    // neither the pid files nor the start times recorded beside them are left
    expect(readdirSync(PID_DIR).filter((f) => f.endsWith('.pid') || f.endsWith('.start'))).toEqual([]);
    expect(await Promise.all(SYSTEM_PORTS.map((p) => portOpen(p)))).toEqual(systemBefore);
    // data stays for the next up
    for (const s of topology.shards)
      expect(existsSync(join(STATE_DIR, s.master.name, 'data', 'mysql'))).toBe(true);
    expect(existsSync(join(STATE_DIR, 'etcd', 'member'))).toBe(true);

    expect(stackCli(['down'])).toContain('nothing was running');
  });
});
