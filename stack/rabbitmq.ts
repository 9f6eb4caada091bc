/**
 * The stack's own RabbitMQ node `shardgate@localhost` on :5673 (never the system node on :5672).
 *
 * It runs `/usr/lib/rabbitmq/bin/rabbitmq-server`, not the `/usr/sbin` wrapper (which switches
 * user and drops the environment). In the foreground without an Erlang shell that script does
 * not exec the VM: it stays the parent of beam.smp, traps SIGTERM and forwards it as a graceful
 * stop. The tracked pid is the script's; `down` signals its whole process group, so the beam VM
 * and its helpers (erl_child_setup, inet_gethost) go with it. epmd daemonizes into its own
 * session and is left running (it may serve the system node too).
 *
 * State (mnesia, logs, the Erlang cookie in HOME) lives in `.stack/rabbitmq`; `rabbitmqctl`
 * needs the same environment (rabbitEnv) to reach the node.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { amqpHandshake } from './probes.js';
import { startProcess, waitUntil } from './process-manager.js';
import { topology } from './topology.js';

const run = promisify(execFile);

export function rabbitEnv(): Record<string, string> {
  const base = join(STATE_DIR, 'rabbitmq');
  return {
    HOME: base,
    RABBITMQ_NODENAME: topology.rabbitmq.node,
    RABBITMQ_NODE_IP_ADDRESS: topology.host,
    RABBITMQ_NODE_PORT: String(topology.rabbitmq.port),
    RABBITMQ_DIST_PORT: String(topology.rabbitmq.distPort),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
    RABBITMQ_PID_FILE: join(base, 'rabbitmq.pid'),
  };
}

export function startRabbit(): number {
  const env = rabbitEnv();
  mkdirSync(env.RABBITMQ_LOG_BASE!, { recursive: true });
  mkdirSync(env.RABBITMQ_MNESIA_BASE!, { recursive: true });
  writeFileSync(env.RABBITMQ_ENABLED_PLUGINS_FILE!, '[].\n');
  // a dev box: no disk alarm on a nearly full disk, a modest memory watermark, logs to the
  // process's stdout (= .stack/logs/rabbitmq.log)
  writeFileSync(
    `${env.RABBITMQ_CONFIG_FILE}.conf`,
    [
      'disk_free_limit.absolute = 50MB',
      'vm_memory_high_watermark.relative = 0.2',
      'log.console = true',
      'log.console.level = warning',
      'log.file = false',
      '',
    ].join('\n'),
  );
  return startProcess({
    name: topology.rabbitmq.name,
    command: binary('rabbitmq-server'),
    args: [],
    env,
  });
}

/**
 * Resolves once the node fully booted: first its AMQP listener answers (`await_startup` fails at
 * once while the node is not yet registered with epmd), then `rabbitmqctl -n shardgate@localhost
 * await_startup` confirms the boot finished.
 */
export async function awaitRabbit(timeoutMs = 90_000): Promise<void> {
  await waitUntil(
    `RabbitMQ AMQP on :${topology.rabbitmq.port}`,
    () => amqpHandshake(topology.rabbitmq.port),
    timeoutMs,
    topology.rabbitmq.name,
  );
  try {
    await run(
      binary('rabbitmqctl'),
      ['-n', topology.rabbitmq.node, '-t', String(Math.ceil(timeoutMs / 1000)), 'await_startup'],
      { env: { ...process.env, ...rabbitEnv() }, timeout: timeoutMs + 10_000 },
    );
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string };
    throw new Error(
      `RabbitMQ ${topology.rabbitmq.node} did not start: ${(e.stderr || e.stdout || String(error)).trim()}`,
    );
  }
}
