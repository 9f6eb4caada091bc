/**
 * The stack's own RabbitMQ node `shardgate@localhost` on :5673 (never the system node on :5672).
 *
 * It runs `/usr/lib/rabbitmq/bin/rabbitmq-server`, not the `/usr/sbin` wrapper (which switches
 * user and drops the environment).
 *
 * Contract: the recorded pid (`.stack/pids/rabbitmq.pid`) IS the broker, the Erlang VM that
 * listens on :5673, and leads its own process group. So `kill -KILL <pid>` ends the broker (a
 * fault test tests what it thinks), `stack status` says `dead` exactly when the VM is gone, a
 * group SIGSTOP/SIGCONT freezes and resumes the broker, and `down`'s SIGTERM reaches the VM,
 * which stops gracefully on it by itself (OTP's default SIGTERM handling, which RabbitMQ's
 * prelaunch sighandler keeps).
 *
 * How: in the foreground without an Erlang shell, the script does not exec the VM: it stays as
 * a parent that traps SIGTERM/SIGINT and forwards them as a graceful stop. A SIGKILL cannot be
 * forwarded, so killing the recorded script left the VM serving while `status` said `dead`, and
 * the next `up` stopped that VM and booted a new node. The script execs the VM
 * (`exec erl` → erlexec → beam.smp, same pid) when it runs under a supervisor that signals the VM
 * itself — its systemd mode, chosen by RUNNING_UNDER_SYSTEMD — which is what the process manager
 * is. Without NOTIFY_SOCKET nothing talks to systemd. `+B i` keeps the VM ignoring SIGINT as in
 * the script's own foreground mode. awaitRabbit checks the contract against the pid the node
 * writes itself (RABBITMQ_PID_FILE) and fails `up` loudly if a future script stops exec-ing.
 *
 * The VM's helpers (erl_child_setup, inet_gethost) run in sessions of their own and exit when
 * the VM's pipes close; epmd daemonizes and is deliberately left running (it may serve the
 * system node too).
 *
 * State (mnesia, logs, the Erlang cookie in HOME) lives in `.stack/rabbitmq`; `rabbitmqctl`
 * needs the same environment (rabbitEnv) to reach the node.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { amqpHandshake } from './probes.js';
import { readPid, startProcess, waitUntil } from './process-manager.js';
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

/** the quorum queues' write-ahead log's size before it rolls over (RabbitMQ's default: 512 MiB) */
const WAL_MAX_BYTES = 64 * 1024 * 1024;

export function startRabbit(): number {
  const env = rabbitEnv();
  mkdirSync(env.RABBITMQ_LOG_BASE!, { recursive: true });
  mkdirSync(env.RABBITMQ_MNESIA_BASE!, { recursive: true });
  writeFileSync(env.RABBITMQ_ENABLED_PLUGINS_FILE!, '[].\n');
  // a dev box: no disk alarm on a nearly full disk, a modest memory watermark, logs to the
  // process's stdout (= .stack/logs/rabbitmq.log). The quorum queues' write-ahead log rolls over
  // at 64 MiB instead of 512 MiB: the broker holds its entries in memory until then, and an
  // outside soak saw its memory grow 90 MB an hour (about 1 KB a mail) towards that watermark
  writeFileSync(
    `${env.RABBITMQ_CONFIG_FILE}.conf`,
    [
      'disk_free_limit.absolute = 50MB',
      'vm_memory_high_watermark.relative = 0.2',
      `raft.wal_max_size_bytes = ${WAL_MAX_BYTES}`,
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
    // exec the VM in place of the script (see the top of this file)
    env: { ...env, RUNNING_UNDER_SYSTEMD: 'true', RABBITMQ_SERVER_START_ARGS: '+B i' },
  });
}

/**
 * Resolves once the node fully booted: first its AMQP listener answers (`await_startup` fails at
 * once while the node is not yet registered with epmd), then `rabbitmqctl -n shardgate@localhost
 * await_startup` confirms the boot finished. Rejects when the VM's own pid is not the recorded one
 * (the start script did not exec the VM): signals to the recorded pid would miss the broker.
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
  const vmPidFile = rabbitEnv().RABBITMQ_PID_FILE!;
  let vm: number;
  try {
    vm = Number(readFileSync(vmPidFile, 'utf8').trim());
  } catch (error) {
    throw new Error(
      `RabbitMQ ${topology.rabbitmq.node} booted but its pid file ${vmPidFile} cannot be read: ${error}`,
    );
  }
  const recorded = readPid(topology.rabbitmq.name);
  if (vm !== recorded) {
    throw new Error(
      `RabbitMQ ${topology.rabbitmq.node} runs as pid ${vm} but the stack recorded pid ${recorded}: ` +
        `${binary('rabbitmq-server')} did not exec the Erlang VM, so signals to the recorded pid miss the broker`,
    );
  }
}
