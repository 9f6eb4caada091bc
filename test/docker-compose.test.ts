/**
 * docker/ mirrors the local topology (issue "Foundation"). No Docker engine runs here, so
 * Debian's docker-compose validates the file (`config` must exit 0), and this test checks that
 * it names the same services and publishes the same ports as stack/topology.ts, that the
 * generated files (HAProxy config, etcd seed) equal a fresh render of the shared templates, and
 * that shardgate-ctl accepts the seed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DOCKER_GENERATED } from '../stack/docker-config.js';
import { REPO_ROOT } from '../stack/paths.js';
import { topology } from '../stack/topology.js';

type Port = string | number | { published: string | number; target: number };
interface Service {
  ports?: Port[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
}
interface Compose {
  services: Record<string, Service>;
}

/** one-shot services of compose that have no long-running counterpart in the local stack */
const ONE_SHOT = ['init'];

function composeConfig(): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('docker-compose', ['-f', 'docker/compose.yml', 'config'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, SHARDGATE_JWT_SECRET: 'compose-validation-only-secret-0123456789' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function published(ports: Port[] = []): number[] {
  return ports.map((p) =>
    typeof p === 'object' ? Number(p.published) : Number(String(p).split(':').at(-2) ?? p),
  );
}

describe('docker/compose.yml', () => {
  const validated = composeConfig();
  const compose = parse(validated.stdout) as Compose;

  it('is valid for docker-compose (config exits 0)', () => {
    expect(validated.stderr).not.toMatch(/ERROR/);
    expect(validated.code).toBe(0);
  });

  it('names the same processes as the local stack topology (plus the one-shot init)', () => {
    const expected = [
      topology.etcd.name,
      topology.redis.name,
      topology.rabbitmq.name,
      topology.smtp.name,
      topology.haproxy.name,
      topology.worker.name,
      topology.lbSync.name,
      ...topology.apis.map((a) => a.id),
      ...topology.shards.flatMap((s) => [s.master.name, ...s.replicas.map((r) => r.name)]),
      ...ONE_SHOT,
    ].sort();
    expect(Object.keys(compose.services).sort()).toEqual(expected);
  });

  it('publishes the same ports', () => {
    const ports = (name: string) => published(compose.services[name]?.ports).sort();
    expect(ports(topology.etcd.name)).toEqual([topology.etcd.port]);
    expect(ports(topology.redis.name)).toEqual([topology.redis.port]);
    expect(ports(topology.rabbitmq.name)).toEqual([topology.rabbitmq.port]);
    expect(ports(topology.smtp.name)).toEqual([topology.smtp.port]);
    expect(ports(topology.haproxy.name)).toEqual([topology.haproxy.port, topology.haproxy.statsPort].sort());
    for (const a of topology.apis) expect(ports(a.id)).toEqual([a.port]);
    for (const s of topology.shards) {
      expect(ports(s.master.name)).toEqual([s.master.port]);
      for (const r of s.replicas) expect(ports(r.name)).toEqual([r.port]);
    }
  });

  it('runs each MariaDB node with its topology port and server id on the thread pool, replicas read-only', () => {
    for (const s of topology.shards) {
      for (const [node, replica] of [
        [s.master, false] as const,
        ...s.replicas.map((r) => [r, true] as const),
      ]) {
        const cmd = compose.services[node.name]?.command ?? [];
        expect(cmd, node.name).toEqual(
          expect.arrayContaining([
            `--port=${node.port}`,
            `--server-id=${node.serverId}`,
            '--gtid-strict-mode=1',
            '--binlog-row-image=MINIMAL',
            '--thread-handling=pool-of-threads',
          ]),
        );
        expect(cmd.includes('--read-only=1'), node.name).toBe(replica);
      }
    }
  });

  it('gives each API container its instance id and port', () => {
    for (const a of topology.apis) {
      expect(compose.services[a.id]?.environment).toMatchObject({
        PORT: String(a.port),
        SHARDGATE_INSTANCE_ID: a.id,
        SHARDGATE_AGENT_PORT: String(a.agentPort),
      });
    }
  });

  it('commits generated files equal to a fresh render of the shared templates', () => {
    for (const [file, render] of Object.entries(DOCKER_GENERATED)) {
      expect(readFileSync(join(REPO_ROOT, file), 'utf8'), `${file}: run npm run stack -- render-docker`).toBe(
        render(),
      );
    }
  });

  it('seeds etcd with a document shardgate-ctl accepts', () => {
    const r = spawnSync(
      process.execPath,
      ['control-plane/bin/shardgate-ctl.js', 'config', 'apply', '--dry-run', '-f', 'docker/etcd-seed.yaml'],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
