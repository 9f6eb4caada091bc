/**
 * The stack's etcd: one member, data in `.stack/etcd`, client and peer URLs on 127.0.0.1 only.
 * Auto-compaction keeps the last 10,000 revisions: enough for watchers that resume from a
 * recent revision; a watcher further behind gets "compacted" and must re-read (CONTRACT.md notes
 * etcd3 does not do that by itself). `--max-txn-ops` is raised from etcd's 128 to ETCD_MAX_TXN_OPS:
 * `shardgate-ctl config apply` writes a file in one transaction, one operation per changed key.
 */
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { httpStatus } from './probes.js';
import { startProcess } from './process-manager.js';
import { topology } from './topology.js';

const H = topology.host;

export const etcdClientUrl = `http://${H}:${topology.etcd.port}`;

/** operations etcd accepts in one transaction (its default, 128, refuses a bigger `config apply`) */
export const ETCD_MAX_TXN_OPS = 4096;

/** the command-line arguments the stack starts etcd with */
export function etcdArgs(): string[] {
  const e = topology.etcd;
  return [
    '--name=shardgate',
    `--data-dir=${join(STATE_DIR, 'etcd')}`,
    `--listen-client-urls=${etcdClientUrl}`,
    `--advertise-client-urls=${etcdClientUrl}`,
    `--listen-peer-urls=http://${H}:${e.peerPort}`,
    `--initial-advertise-peer-urls=http://${H}:${e.peerPort}`,
    `--initial-cluster=shardgate=http://${H}:${e.peerPort}`,
    '--auto-compaction-mode=revision',
    '--auto-compaction-retention=10000',
    `--max-txn-ops=${ETCD_MAX_TXN_OPS}`,
    '--log-level=warn',
  ];
}

export function startEtcd(): number {
  return startProcess({
    name: topology.etcd.name,
    command: binary('etcd'),
    args: etcdArgs(),
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
