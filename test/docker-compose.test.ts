/**
 * docker/ mirrors the local topology (issue "Foundation"). No Docker engine runs here, so
 * Debian's docker-compose validates the file (`config` must exit 0), and this test checks that
 * it names the same services and publishes the same ports as stack/topology.ts, that the
 * generated files (HAProxy config, etcd seed) equal a fresh render of the shared templates, that
 * shardgate-ctl accepts the seed, and that the init service applies it to an empty cluster only
 * (its shell script runs here against a stub `node`).
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DOCKER_GENERATED } from '../stack/docker-config.js';
import { DOCKER_SECRETS, writeDockerSecrets } from '../stack/docker-secrets.js';
import { REPO_ROOT } from '../stack/paths.js';
import { REDIS_MAXMEMORY, REDIS_MAXMEMORY_POLICY, REDIS_MAXMEMORY_SAMPLES } from '../stack/redis.js';
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

/** placeholder secrets for validating the file; a deployment gets random ones (docker-secrets) */
const SECRETS = Object.fromEntries(
  Object.keys(DOCKER_SECRETS).map((name) => [name, `validation-only-${name}`]),
);

/** settings compose takes from the environment with a default; the test's shell must not set them */
const SETTINGS = ['SHARDGATE_PUBLISH_HOST', 'SHARDGATE_REDIS_MAXMEMORY'];

/**
 * `docker-compose config` of `file`, with `secrets` as the only secrets (and settings of SETTINGS)
 * in its environment
 */
function composeConfig(
  secrets: Record<string, string> = SECRETS,
  file = 'docker/compose.yml',
): { code: number; stdout: string; stderr: string } {
  const env: Record<string, string | undefined> = { ...process.env, ...secrets };
  for (const name of [...Object.keys(DOCKER_SECRETS), ...SETTINGS]) if (!(name in secrets)) delete env[name];
  const r = spawnSync('docker-compose', ['-f', file, 'config'], { cwd: REPO_ROOT, encoding: 'utf8', env });
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

  it('publishes every port on 127.0.0.1 only, unless SHARDGATE_PUBLISH_HOST says otherwise', () => {
    for (const [name, service] of Object.entries(compose.services))
      for (const p of service.ports ?? []) {
        const host = typeof p === 'object' ? (p as { host_ip?: string }).host_ip : String(p).split(':')[0];
        expect(host, `${name}: ${JSON.stringify(p)}`).toBe('127.0.0.1');
      }
    const open = composeConfig({ ...SECRETS, SHARDGATE_PUBLISH_HOST: '0.0.0.0' });
    expect(open.code).toBe(0);
    expect(open.stdout).toMatch(/0\.0\.0\.0:8080:8080/);
  });

  it('refuses to start without each secret, naming it and the command that makes them', () => {
    for (const missing of Object.keys(DOCKER_SECRETS)) {
      const { [missing]: _, ...rest } = SECRETS;
      const r = composeConfig(rest);
      expect(r.code, missing).not.toBe(0);
      expect(r.stderr, missing).toMatch(new RegExp(`run npm run stack -- docker-secrets, or set ${missing}`));
    }
  });

  it('takes the secrets from docker/.env as docker-secrets writes it (mode 600), and keeps them on a second run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardgate-compose-'));
    try {
      cpSync(join(REPO_ROOT, 'docker'), dir, { recursive: true });
      rmSync(join(dir, '.env'), { force: true });
      const envFile = join(dir, '.env');
      // no secret of the shell running the test: each one is generated into the file
      expect(writeDockerSecrets(envFile, {}).created.sort()).toEqual(Object.keys(DOCKER_SECRETS).sort());
      expect(statSync(envFile).mode & 0o777).toBe(0o600);
      const first = readFileSync(envFile, 'utf8');
      const values = [...first.matchAll(/^[A-Z_]+=(.+)$/gm)].map((m) => m[1]!);
      expect(new Set(values).size).toBe(Object.keys(DOCKER_SECRETS).length);
      for (const v of values) expect(v).toMatch(/^[A-Za-z0-9_-]{32,}$/);
      expect(writeDockerSecrets(envFile, {}).created).toEqual([]);
      expect(readFileSync(envFile, 'utf8')).toBe(first);

      const r = composeConfig({}, join(dir, 'compose.yml'));
      expect(r.stderr).not.toMatch(/ERROR|Missing/);
      expect(r.code).toBe(0);
      for (const v of values) expect(r.stdout).toContain(v);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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

  it('gives each API container its instance id and port, listening on every interface of its container', () => {
    for (const a of topology.apis) {
      expect(compose.services[a.id]?.environment).toMatchObject({
        PORT: String(a.port),
        SHARDGATE_INSTANCE_ID: a.id,
        SHARDGATE_AGENT_PORT: String(a.agentPort),
        // HAProxy reaches the HTTP and agent ports from its own container (the default, 127.0.0.1,
        // would answer inside the API container only)
        SHARDGATE_LISTEN_HOST: '0.0.0.0',
      });
    }
    expect(compose.services[topology.worker.name]?.environment).toMatchObject({
      SHARDGATE_LISTEN_HOST: '0.0.0.0',
    });
  });

  it('runs RabbitMQ without guest: user shardgate with SHARDGATE_RABBITMQ_PASSWORD, in every AMQP URL', () => {
    const password = SECRETS.SHARDGATE_RABBITMQ_PASSWORD!;
    expect(compose.services[topology.rabbitmq.name]?.environment).toMatchObject({
      RABBITMQ_DEFAULT_USER: 'shardgate',
      RABBITMQ_DEFAULT_PASS: password,
    });
    const amqp = Object.entries(compose.services).filter(([, s]) => s.environment?.SHARDGATE_AMQP_URL);
    // the worker consumes and publishes; init runs shardgate-ctl (its mail commands speak AMQP)
    expect(amqp.map(([name]) => name)).toEqual(expect.arrayContaining([topology.worker.name, 'init']));
    for (const [name, s] of amqp) {
      const url = new URL(s.environment!.SHARDGATE_AMQP_URL!);
      expect(
        { user: url.username, password: url.password, host: url.hostname, port: url.port },
        name,
      ).toEqual({
        user: 'shardgate',
        password,
        host: topology.rabbitmq.name,
        port: String(topology.rabbitmq.port),
      });
    }
    expect(validated.stdout).not.toMatch(/guest/);
  });

  it('bounds Redis memory as the local stack does, evicting the keys nearest their expiry first', () => {
    const option = (cmd: string[] | undefined, name: string) => cmd?.[cmd.indexOf(name) + 1];
    const cmd = compose.services[topology.redis.name]?.command;
    expect(option(cmd, '--maxmemory')).toBe(REDIS_MAXMEMORY);
    expect(option(cmd, '--maxmemory-policy')).toBe(REDIS_MAXMEMORY_POLICY);
    expect(option(cmd, '--maxmemory-samples')).toBe(String(REDIS_MAXMEMORY_SAMPLES));
    const bigger = composeConfig({ ...SECRETS, SHARDGATE_REDIS_MAXMEMORY: '1gb' });
    expect(bigger.code).toBe(0);
    const biggerCmd = (parse(bigger.stdout) as Compose).services[topology.redis.name]?.command;
    expect(option(biggerCmd, '--maxmemory')).toBe('1gb');
    expect(option(biggerCmd, '--maxmemory-policy')).toBe(REDIS_MAXMEMORY_POLICY);
  });

  it('commits generated files equal to a fresh render of the shared templates', () => {
    for (const [file, render] of Object.entries(DOCKER_GENERATED)) {
      expect(readFileSync(join(REPO_ROOT, file), 'utf8'), `${file}: run npm run stack -- render-docker`).toBe(
        render(),
      );
    }
  });

  /** the init service's shell script, as compose runs it (`$$` is compose's escape of `$`) */
  function initScript(): string[] {
    const command = parse(readFileSync(join(REPO_ROOT, 'docker', 'compose.yml'), 'utf8')).services.init
      .command as string[];
    return [...command.slice(0, -1), command.at(-1)!.replaceAll('$$', '$')];
  }

  it('seeds etcd with a document shardgate-ctl accepts, as the init service applies it', () => {
    const apply = /config apply (.*?);/
      .exec(initScript().at(-1)!)?.[1]
      ?.replace('/seed/etcd-seed.yaml', 'docker/etcd-seed.yaml');
    expect(apply).toBe('--force -f docker/etcd-seed.yaml');
    const r = spawnSync(
      process.execPath,
      ['control-plane/bin/shardgate-ctl.js', 'config', 'apply', '--dry-run', ...apply!.split(' ')],
      { cwd: REPO_ROOT, encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('init applies the seed to an empty cluster only: a second `up` keeps shards, placement and weights', () => {
    const [shell, ...args] = initScript();
    expect(shell).toBe('sh');
    const dir = mkdtempSync(join(tmpdir(), 'shardgate-init-'));
    try {
      // a stub `node` that logs what it runs and answers `shards list --json` as told
      const log = join(dir, 'log');
      writeFileSync(
        join(dir, 'node'),
        `#!/bin/sh\necho "$*" >> "${log}"\ncase "$*" in *"shards list --json"*) printf '%s\\n' "$SHARDS"; exit "$SHARDS_RC";; esac\n`,
      );
      chmodSync(join(dir, 'node'), 0o755);
      const run = (shards: string, rc = 0) => {
        rmSync(log, { force: true });
        const r = spawnSync(shell!, args, {
          encoding: 'utf8',
          env: { ...process.env, PATH: `${dir}:${process.env.PATH}`, SHARDS: shards, SHARDS_RC: String(rc) },
        });
        const ran = readFileSync(log, 'utf8').trim().split('\n');
        return { code: r.status, stdout: r.stdout, ran };
      };

      const empty = run('[]');
      expect(empty.code).toBe(0);
      expect(empty.ran).toEqual([
        'dist/control-plane/cli.js init --no-topology',
        'dist/control-plane/cli.js shards list --json',
        'dist/control-plane/cli.js config apply --force -f /seed/etcd-seed.yaml',
        'dist/src/db/migrate-cli.js',
      ]);

      // seeded before, and a failover since: the seed is not applied again, the migrations run
      const seeded = run('[{"id":"shard-1","master":{"host":"shard-1-replica","port":3317}}]');
      expect(seeded.code).toBe(0);
      expect(seeded.ran).toEqual([
        'dist/control-plane/cli.js init --no-topology',
        'dist/control-plane/cli.js shards list --json',
        'dist/src/db/migrate-cli.js',
      ]);
      expect(seeded.stdout).toMatch(/already holds shards: the seed is not applied again/);

      // etcd not answering is not "seeded": init fails (and compose starts nothing after it)
      const down = run('', 2);
      expect(down.code).not.toBe(0);
      expect(down.ran).toEqual([
        'dist/control-plane/cli.js init --no-topology',
        'dist/control-plane/cli.js shards list --json',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
