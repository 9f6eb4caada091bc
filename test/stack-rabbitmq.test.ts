/**
 * The stack's RabbitMQ node as fault tests and operators see it: the pid in
 * `.stack/pids/rabbitmq.pid` is the broker itself (the Erlang VM that listens on the AMQP port),
 * so `kill -KILL $(cat .stack/pids/rabbitmq.pid)` ends the broker, `stack status` then says
 * `dead`, and `stack up` brings a new node. Stopping it the way `stack down` does ends the VM on
 * SIGTERM within the grace period and never touches the system RabbitMQ on :5672.
 *
 * Each test restarts the stack's node (`stack up`, 10–30 s) and leaves the stack healthy.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../stack/paths.js';
import { amqpHandshake, portOpen } from '../stack/probes.js';
import { processes } from '../stack/process-manager.js';
import type { StatusRow } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import { stackCli, stackPid } from './helpers/stack.js';
import { waitFor } from './helpers/wait-for.js';

const NAME = topology.rabbitmq.name;
const PORT = topology.rabbitmq.port;
/** the machine's own RabbitMQ: nothing here may touch it */
const SYSTEM_AMQP_PORT = 5672;
const UP_TIMEOUT_MS = 300_000;

/** `stack status --json` as an operator runs it (exit 1 while something is unhealthy) */
function stackStatus(): StatusRow[] {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'status', '--json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (r.status !== 0 && r.status !== 1) throw new Error(`stack status exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusRow[];
}

const rabbitRow = () => stackStatus().find((r) => r.name === NAME)!;

/** pid of the process listening on 127.0.0.1:`port` (ss -ltnp), undefined when none */
function listenerPid(port: number): number | undefined {
  const listing = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const m = /pid=(\d+)/.exec(listing);
  return m ? Number(m[1]) : undefined;
}

/** the stack as it was before: every process serving */
function restoreStack(): void {
  stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
}

afterAll(() => {
  // whatever a failed test left behind, the suite goes on against a healthy stack
  if (!stackStatus().every((r) => r.healthy)) restoreStack();
}, UP_TIMEOUT_MS);

describe('stack RabbitMQ: the recorded pid is the broker', () => {
  it(
    'SIGKILL of the recorded pid ends the broker: the AMQP port stops answering, status says dead, up brings it back',
    async () => {
      const pid = stackPid(NAME)!;
      expect(rabbitRow()).toMatchObject({ state: 'running', healthy: true, pid });
      expect(listenerPid(PORT), 'the recorded pid is the process that listens on the AMQP port').toBe(pid);
      const systemBefore = await portOpen(SYSTEM_AMQP_PORT);
      try {
        process.kill(pid, 'SIGKILL');
        await waitFor(async () => !(await portOpen(PORT)), {
          timeoutMs: 5000,
          what: `:${PORT} to stop taking connections after SIGKILL of pid ${pid}`,
        });
        expect(await amqpHandshake(PORT)).toBe(false);
        expect(rabbitRow()).toMatchObject({ state: 'dead', healthy: false });
      } finally {
        restoreStack();
      }
      const row = rabbitRow();
      expect(row).toMatchObject({ state: 'running', healthy: true });
      expect(row.pid).not.toBe(pid);
      expect(listenerPid(PORT)).toBe(row.pid);
      expect(await amqpHandshake(PORT)).toBe(true);
      expect(await portOpen(SYSTEM_AMQP_PORT)).toBe(systemBefore);
    },
    UP_TIMEOUT_MS + 60_000,
  );

  it(
    'stop as `down` does it ends the broker on SIGTERM within the grace period, and nothing else',
    async () => {
      const pid = stackPid(NAME)!;
      expect(listenerPid(PORT)).toBe(pid);
      const systemListener = listenerPid(SYSTEM_AMQP_PORT);
      const graceMs = 10_000;
      try {
        const t0 = Date.now();
        expect(await processes.stop(NAME, { graceMs })).toBe(true);
        // the VM ended on SIGTERM (a graceful stop), not on the SIGKILL that follows the grace period
        expect(Date.now() - t0).toBeLessThan(graceMs);
        expect(await portOpen(PORT)).toBe(false);
        expect(processes.state(NAME)).toBe('not started');
        expect(listenerPid(SYSTEM_AMQP_PORT)).toBe(systemListener);
      } finally {
        restoreStack();
      }
      expect(rabbitRow()).toMatchObject({ state: 'running', healthy: true });
    },
    UP_TIMEOUT_MS + 60_000,
  );
});
