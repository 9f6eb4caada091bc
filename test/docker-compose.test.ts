/**
 * docker/ mirrors the local topology (issue "Foundation" item 6). No Docker engine runs here, so
 * Debian's docker-compose validates the file, and this test checks it names the same services
 * and published ports as stack/topology.ts, and that the committed HAProxy config is exactly
 * what the shared renderer produces (one template for both).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderDockerHaproxyConfig } from '../stack/haproxy-config.js';
import { topology } from '../stack/topology.js';

interface Compose {
  services: Record<string, { ports?: (string | { published: string | number; target: number })[] }>;
}

function resolved(): Compose {
  const out = execFileSync('docker-compose', ['-f', 'docker/compose.yml', 'config'], {
    encoding: 'utf8',
    env: { ...process.env, SHARDGATE_JWT_SECRET: 'compose-validation-only-secret-0123456789' },
  });
  return parse(out) as Compose;
}

function published(ports: Compose['services'][string]['ports'] = []): number[] {
  return ports.map((p) => (typeof p === 'string' ? Number(p.split(':')[0]) : Number(p.published)));
}

describe('docker/compose.yml', () => {
  const compose = resolved();

  it('names the same processes as the local stack topology', () => {
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
    ].sort();
    expect(Object.keys(compose.services).sort()).toEqual(expected);
  });

  it('publishes the same ports', () => {
    const ports = (name: string) => published(compose.services[name]?.ports);
    expect(ports(topology.etcd.name)).toEqual([topology.etcd.port]);
    expect(ports(topology.redis.name)).toEqual([topology.redis.port]);
    expect(ports(topology.rabbitmq.name)).toEqual([topology.rabbitmq.port]);
    expect(ports(topology.smtp.name)).toEqual([topology.smtp.port]);
    expect(ports(topology.haproxy.name).sort()).toEqual(
      [topology.haproxy.port, topology.haproxy.statsPort].sort(),
    );
    for (const a of topology.apis) expect(ports(a.id)).toEqual([a.port]);
    for (const s of topology.shards) {
      expect(ports(s.master.name)).toEqual([s.master.port]);
      for (const r of s.replicas) expect(ports(r.name)).toEqual([r.port]);
    }
  });

  it('uses the HAProxy config rendered by the shared template', () => {
    expect(readFileSync('docker/haproxy/haproxy.cfg', 'utf8')).toBe(renderDockerHaproxyConfig());
  });
});
