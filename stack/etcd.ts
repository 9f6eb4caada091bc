/**
 * The stack's etcd: one member, data in `.stack/etcd`, client and peer URLs on 127.0.0.1 only.
 * Auto-compaction keeps the last 10,000 revisions: enough for watchers that resume from a
 * recent revision; a watcher further behind gets "compacted" and must re-read (CONTRACT.md notes
 * etcd3 does not do that by itself).
 */
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { httpStatus } from './probes.js';
import { startProcess } from './process-manager.js';
import { topology } from './topology.js';

const H = topology.host;

export const etcdClientUrl = `http://${H}:${topology.etcd.port}`;

export function startEtcd(): number {
  const e = topology.etcd;
  return startProcess({
    name: e.name,
    command: binary('etcd'),
    args: [
      '--name=shardgate',
      `--data-dir=${join(STATE_DIR, 'etcd')}`,
      `--listen-client-urls=${etcdClientUrl}`,
      `--advertise-client-urls=${etcdClientUrl}`,
      `--listen-peer-urls=http://${H}:${e.peerPort}`,
      `--initial-advertise-peer-urls=http://${H}:${e.peerPort}`,
      `--initial-cluster=shardgate=http://${H}:${e.peerPort}`,
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=10000',
      '--log-level=warn',
    ],
    // etcd 3.4 also reads ETCD_* variables; an operator's shell must not reconfigure the stack's
    env: Object.fromEntries(
      Object.keys(process.env)
        .filter((k) => k.startsWith('ETCD_'))
        .map((k) => [k, undefined]),
    ),
  });
}

/** etcd's /health answers 200 with {"health":"true"} once it has a leader. */
export async function etcdHealthy(): Promise<boolean> {
  return (await httpStatus(`${etcdClientUrl}/health`)) === 200;
}
