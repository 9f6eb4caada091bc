/**
 * docker/ mirrors the local topology (issue "Foundation"). No Docker engine runs here, so
 * Debian's docker-compose validates the file (`config` must exit 0), and this test checks that
 * it names the same services and publishes the same ports as stack/topology.ts, that the
 * generated files (HAProxy config, etcd seed) equal a fresh render of the shared templates, that
 * shardgate-ctl accepts the seed, and that the init service applies it to an empty cluster only
 * (its shell script runs here against a stub `node`).
 * What `config` cannot see and a container would only show at run time is checked from the file
 * and the Dockerfile: each container listens on the port it publishes, each replica follows its
 * own shard's master, every Node entry is built from a source file, start order behind `init`,
 * the weights HAProxy and the agent-check agree on, state on named volumes, restart policies and
 * stop grace periods, and the image's mail directory and `shardgate-ctl` link.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { envSchema } from '../src/env.js';
import { DOCKER_GENERATED } from '../stack/docker-config.js';
import { DOCKER_SECRETS, writeDockerSecrets } from '../stack/docker-secrets.js';
import { REPO_ROOT } from '../stack/paths.js';
import { REDIS_MAXMEMORY, REDIS_MAXMEMORY_POLICY, REDIS_MAXMEMORY_SAMPLES } from '../stack/redis.js';
import { topology } from '../stack/topology.js';

type Port = string | number | { published: string | number; target: number };
type Mount = string | { type?: string; source?: string; target: string };
interface Service {
  image?: string;
  build?: unknown;
  user?: string;
  hostname?: string;
  restart?: string;
  stop_grace_period?: string;
  ports?: Port[];
  command?: string[];
  environment?: Record<string, string>;
  volumes?: Mount[];
  depends_on?: Record<string, { condition: string }> | string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

/** the image docker/Dockerfile builds; every service running it is a Node process of ours */
const NODE_IMAGE = 'shardgate:local';
const DOCKERFILE = readFileSync(join(REPO_ROOT, 'docker', 'Dockerfile'), 'utf8');
const DOCKER_HAPROXY_CFG = readFileSync(join(REPO_ROOT, 'docker', 'haproxy', 'haproxy.cfg'), 'utf8');
const MARIADB_NODES = topology.shards.flatMap((s) => [s.master, ...s.replicas]);
/** where the official images keep their data */
const MARIADB_DATADIR = '/var/lib/mysql';
const RABBITMQ_DATADIR = '/var/lib/rabbitmq';

/** one-shot services of compose that have no long-running counterpart in the local stack */
const ONE_SHOT = ['init'];

/** placeholder secrets for validating the file; a deployment gets random ones (docker-secrets) */
const SECRETS = Object.fromEntries(
  Object.keys(DOCKER_SECRETS).map((name) => [name, `validation-only-${name}`]),
);

/** settings compose takes from the environment with a default; the test's shell must not set them */
const SETTINGS = ['SHARDGATE_PUBLISH_HOST', 'SHARDGATE_REDIS_MAXMEMORY', 'SHARDGATE_BUILD_COMMIT'];

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

/** the container side of each port mapping (`host:published:target[/proto]`) */
function containerPorts(ports: Port[] = []): number[] {
  return ports.map((p) =>
    typeof p === 'object' ? Number(p.target) : Number(String(p).split(':').at(-1)!.split('/')[0]),
  );
}

/** `--name=value` of a command, or the argument after `--name` */
function flag(cmd: string[] = [], name: string): string | undefined {
  const joined = cmd.find((a) => a.startsWith(`${name}=`));
  if (joined !== undefined) return joined.slice(name.length + 1);
  const i = cmd.indexOf(name);
  return i >= 0 ? cmd[i + 1] : undefined;
}

/**
 * The ports a service's process listens on inside its container, read from what configures it
 * (command line, environment, haproxy.cfg), not from its `ports:`: a mapping to another container
 * port (`8080:80`) publishes a port nothing answers on.
 */
function listensOn(name: string, s: Service): number[] {
  const env = s.environment ?? {};
  if (MARIADB_NODES.some((n) => n.name === name)) return [Number(flag(s.command, '--port'))];
  if (topology.apis.some((a) => a.id === name)) return [Number(env.PORT)];
  switch (name) {
    case topology.etcd.name:
      return (flag(s.command, '--listen-client-urls') ?? '').split(',').map((u) => Number(new URL(u).port));
    case topology.redis.name:
      return [Number(flag(s.command, '--port'))];
    case topology.rabbitmq.name:
      return [Number(env.RABBITMQ_NODE_PORT)];
    case topology.smtp.name:
      // stack/smtp-sink.ts: SHARDGATE_SMTP_PORT, else the topology's port
      return [Number(env.SHARDGATE_SMTP_PORT ?? topology.smtp.port)];
    case topology.haproxy.name:
      return [...DOCKER_HAPROXY_CFG.matchAll(/^\s+bind \S+:(\d+)/gm)].map((m) => Number(m[1]));
    case topology.worker.name:
      return [Number(env.SHARDGATE_WORKER_METRICS_PORT ?? 0)].filter((p) => p > 0);
    default:
      return [];
  }
}

/** `[source, target]` of each mount; source undefined for an anonymous volume */
function mounts(s: Service): [string | undefined, string][] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'object') return [v.source, v.target];
    const parts = v.split(':');
    return parts.length === 1 ? [undefined, parts[0]!] : [parts[0], parts[1]!];
  });
}

/** the `dist/….js` files a command runs (also inside a `sh -c` script) */
function distEntries(cmd: string[]): string[] {
  return cmd.flatMap((a) => a.match(/\bdist\/[\w./-]+\.js\b/g) ?? []);
}

/** a Dockerfile's stages, each the text from its FROM to the next */
function dockerStages(text: string): string[] {
  return text.split(/^(?=FROM )/m).filter((s) => s.startsWith('FROM '));
}

/** a Dockerfile's instructions, continuation lines joined */
function instructions(text: string): string[] {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() && !l.startsWith('#'));
}

/** a compose duration (`20s`, `1m30s`, `500ms`) in milliseconds; undefined when unset */
function durationMs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...String(text).matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.map((m) => m[0]).join('') !== String(text)) throw new Error(`not a duration: ${text}`);
  return parts.reduce((sum, m) => sum + Number(m[1]) * unit[m[2]!]!, 0);
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
    // the local stack's worker serves /metrics on the topology's port; so does its container
    expect(ports(topology.worker.name)).toEqual([topology.worker.metricsPort]);
    expect(compose.services[topology.worker.name]?.environment?.SHARDGATE_WORKER_METRICS_PORT).toBe(
      String(topology.worker.metricsPort),
    );
    for (const s of topology.shards) {
      expect(ports(s.master.name)).toEqual([s.master.port]);
      for (const r of s.replicas) expect(ports(r.name)).toEqual([r.port]);
    }
  });

  it('maps each published port to the same container port, the one its service listens on', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      const inside = containerPorts(service.ports).sort();
      expect(inside, `${name}: container ports = its published ports`).toEqual(
        published(service.ports).sort(),
      );
      expect(inside, `${name}: container ports = the ports it listens on`).toEqual(
        listensOn(name, service).sort(),
      );
    }
  });

  it("points each replica at its own shard's master (host and port of stack/topology.ts), started after it", () => {
    for (const s of topology.shards)
      for (const r of s.replicas) {
        const replica = compose.services[r.name];
        expect(replica?.environment, r.name).toMatchObject({
          MASTER_HOST: s.master.name,
          MASTER_PORT: String(s.master.port),
        });
        expect(
          (replica?.depends_on as Record<string, { condition: string }>)?.[s.master.name],
          r.name,
        ).toEqual({
          condition: 'service_healthy',
        });
      }
  });

  it('runs in every Node container a dist/ entry that the build makes from a source file', () => {
    // tsc (tsconfig.build.json) turns <dir>/x.ts of its include into dist/<dir>/x.js; dist/ here
    // may be stale or absent, so the source is what must exist
    const include = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] }
    ).include;
    const cmd = instructions(dockerStages(DOCKERFILE).at(-1)!).findLast((l) => l.startsWith('CMD '));
    const imageCmd = JSON.parse(cmd!.slice('CMD '.length)) as string[];
    const node = Object.entries(compose.services).filter(([, s]) => s.image === NODE_IMAGE);
    expect(node.map(([name]) => name)).toEqual(
      expect.arrayContaining([topology.smtp.name, topology.worker.name, topology.lbSync.name, 'init']),
    );
    for (const [name, service] of [...node, ['Dockerfile CMD', { command: imageCmd }] as const]) {
      const entries = distEntries(service.command ?? imageCmd);
      expect(entries.length, `${name}: ${JSON.stringify(service.command ?? imageCmd)}`).toBeGreaterThan(0);
      for (const entry of entries) {
        const source = entry.replace(/^dist\//, '').replace(/\.js$/, '.ts');
        expect(include, `${name}: ${entry}`).toContain(source.split('/')[0]);
        expect(source.endsWith('.test.ts'), `${name}: ${entry}`).toBe(false);
        expect(existsSync(join(REPO_ROOT, source)), `${name}: ${entry} (no ${source})`).toBe(true);
      }
    }
  });

  it('starts the API and worker containers only after init completed successfully', () => {
    // `service_started` would start them against an unseeded etcd and unmigrated shards, and
    // start them even when init failed
    for (const name of [...topology.apis.map((a) => a.id), topology.worker.name]) {
      const deps = compose.services[name]?.depends_on as Record<string, { condition: string }> | undefined;
      expect(deps?.init, name).toEqual({ condition: 'service_completed_successfully' });
    }
    const init = compose.services.init?.depends_on as Record<string, { condition: string }>;
    for (const n of MARIADB_NODES) expect(init?.[n.name], n.name).toEqual({ condition: 'service_healthy' });
  });

  it("gives each API container the topology's LB weight, the weight haproxy.cfg gives its server", () => {
    // the agent-check answers in percent of SHARDGATE_LB_INITIAL_WEIGHT: any other value than the
    // server's configured weight is read by HAProxy as a weight change (`up 1000%`), which
    // `lb sync` then undoes
    for (const a of topology.apis) {
      expect(compose.services[a.id]?.environment?.SHARDGATE_LB_INITIAL_WEIGHT, a.id).toBe(String(a.weight));
      expect(DOCKER_HAPROXY_CFG).toMatch(new RegExp(`^\\s+server ${a.id} \\S+ weight ${a.weight} `, 'm'));
    }
  });

  it("creates the SMTP sink's mail directory in the image, owned by node, before USER node", () => {
    // a named volume starts as a copy of the image directory it mounts over, owner included; with
    // no directory there, Docker creates it root-owned 755, and the sink (user node) can write no
    // message: it answers 451 and every mail goes to the dead-letter queue
    const sink = compose.services[topology.smtp.name]!;
    const mailDir = sink.environment?.SHARDGATE_MAIL_DIR;
    expect(mailDir).toBeDefined();
    expect(sink.user ?? 'node').toBe('node');
    const [source] = mounts(sink).find(([, target]) => target === mailDir) ?? [];
    expect(Object.keys(compose.volumes ?? {}), `${mailDir}: a named volume`).toContain(source);
    const runtime = instructions(dockerStages(DOCKERFILE).at(-1)!);
    const user = runtime.findIndex((l) => /^USER node\s*$/.test(l));
    expect(user).toBeGreaterThan(0);
    const dir = new RegExp(`\\s${mailDir!.replace(/[/.]/g, '\\$&')}(\\s|$)`);
    const runs = runtime.slice(0, user).filter((l) => l.startsWith('RUN ') && dir.test(l));
    expect(
      runs.some((l) => /\bmkdir\b/.test(l)),
      `RUN mkdir … ${mailDir} before USER node`,
    ).toBe(true);
    expect(
      runs.some((l) => /\bchown\s+(-\S+\s+)*node(:node)?\s/.test(l)),
      `RUN chown node … ${mailDir} before USER node`,
    ).toBe(true);
  });

  it('keeps the state of every stateful service on a named volume of its own, so `down` and `up` keep it', () => {
    const stateDirs: Record<string, string | undefined> = {
      ...Object.fromEntries(MARIADB_NODES.map((n) => [n.name, MARIADB_DATADIR])),
      [topology.rabbitmq.name]: RABBITMQ_DATADIR,
      [topology.etcd.name]: flag(compose.services[topology.etcd.name]?.command, '--data-dir'),
      [topology.smtp.name]: compose.services[topology.smtp.name]?.environment?.SHARDGATE_MAIL_DIR,
    };
    const named = Object.keys(compose.volumes ?? {});
    const used: string[] = [];
    for (const [name, dir] of Object.entries(stateDirs)) {
      expect(dir, name).toBeDefined();
      const [source] = mounts(compose.services[name]!).find(([, target]) => target === dir) ?? [];
      expect(named, `${name}: ${dir} on a named volume`).toContain(source);
      used.push(source!);
    }
    // two nodes on one volume would share (and corrupt) one datadir
    expect(new Set(used).size).toBe(used.length);
    // RabbitMQ names its data directory after its node name, whose host part is the container's
    // hostname: a hostname that changed with each container would leave the data behind
    const rabbit = compose.services[topology.rabbitmq.name]!;
    expect(rabbit.hostname).toBeDefined();
    expect(rabbit.environment?.RABBITMQ_NODENAME).toBe(topology.rabbitmq.node);
    expect(rabbit.environment?.RABBITMQ_NODENAME?.split('@')[1]).toBe(rabbit.hostname);
    // Redis holds a cache only: it must persist nothing (else it needs a volume too)
    const redis = compose.services[topology.redis.name]?.command;
    expect(flag(redis, '--save')).toBe('');
    expect(flag(redis, '--appendonly')).toBe('no');
  });

  it('restarts every long-running service unless stopped by hand; the one-shot init never', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (ONE_SHOT.includes(name)) expect(service.restart ?? 'no', name).toBe('no');
      else expect(['unless-stopped', 'always'], name).toContain(service.restart);
    }
  });

  it('gives the API and worker containers longer than their own shutdown before SIGKILL', () => {
    // node.ts: drain, then SHARDGATE_SHUTDOWN_TIMEOUT_MS for open requests, then it exits 1
    // itself 5 s later; Docker's default 10 s would kill a draining instance mid-request
    for (const name of [...topology.apis.map((a) => a.id), topology.worker.name]) {
      const env = compose.services[name]?.environment ?? {};
      const drain = envSchema.shape.SHARDGATE_DRAIN_MS.parse(env.SHARDGATE_DRAIN_MS);
      const shutdown = envSchema.shape.SHARDGATE_SHUTDOWN_TIMEOUT_MS.parse(env.SHARDGATE_SHUTDOWN_TIMEOUT_MS);
      const grace = durationMs(compose.services[name]?.stop_grace_period);
      expect(grace, name).toBeDefined();
      expect(grace!, name).toBeGreaterThan(drain + shutdown + 5000);
    }
  });

  it('re-resolves the API containers by Docker DNS (a recreated container gets a new address)', () => {
    expect(DOCKER_HAPROXY_CFG).toMatch(/^resolvers docker\n(\s+.*\n)*?\s+nameserver \S+ 127\.0\.0\.11:53\n/m);
    for (const a of topology.apis)
      expect(DOCKER_HAPROXY_CFG).toMatch(
        new RegExp(
          `^\\s+server ${a.id} ${a.id}:${a.port} .*\\bresolvers docker init-addr last,libc,none\\b`,
          'm',
        ),
      );
  });

  it('links shardgate-ctl in the image: its bin is in place when npm ci links the workspace', () => {
    // npm skips a workspace bin whose file is missing at install time, without a word
    const bin = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'control-plane', 'package.json'), 'utf8')) as {
        bin: Record<string, string>;
      }
    ).bin['shardgate-ctl'];
    const file = `control-plane/${bin}`;
    const build = instructions(dockerStages(DOCKERFILE)[0]!);
    const ci = build.findIndex((l) => /^RUN npm ci\b/.test(l));
    expect(ci).toBeGreaterThan(0);
    const copied = build
      .slice(0, ci)
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from'))
      .flatMap((l) => l.split(/\s+/).slice(1, -1))
      .map((src) => src.replace(/\/$/, ''));
    expect(
      copied.some((src) => file === src || file.startsWith(`${src}/`)),
      `COPY of ${file} before npm ci`,
    ).toBe(true);
    // and the runtime stage has the bin the link points at
    expect(instructions(dockerStages(DOCKERFILE).at(-1)!)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^COPY --from=build \/app\/control-plane(\/bin)? /)]),
    );
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
