/**
 * etcd SIGKILLed: the instances go on serving from the last good config, and their logs stay
 * readable. While etcd refuses connections, the watch of an instance reconnects every few
 * hundred ms, its errors alternating between two messages, and its registration retries every
 * second; each used to log a warning per failure (about 3.8 lines a second per process, 117 in
 * 31 s from the worker in an outside check). Now the first is logged at once and then at most
 * one per 30 s (src/observability/warn-limiter.ts), and the reconnect says how many it left out.
 *
 * Once etcd is back, a put takes effect on both instances within the contract's 2 s: the
 * reconnects of gRPC and of the watch are at most 500 ms apart (src/config/etcd-client.ts). With
 * both capped at 2 s, an outside check saw a put made 1.3 s after the restart apply after 1.7–2.9 s.
 *
 * Restarts etcd (`stack up`); leaves the stack healthy.
 */
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_DIR, REPO_ROOT } from '../stack/paths.js';
import { portOpen } from '../stack/probes.js';
import { topology } from '../stack/topology.js';
import { INSTANCES } from './helpers/api.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { stackCli, stackPid } from './helpers/stack.js';
import { waitFor } from './helpers/wait-for.js';

const UP_TIMEOUT_MS = 300_000;
const OUTAGE_MS = 12_000;
const LOGS = ['api-1', 'api-2', 'email-worker'];

const logOf = (name: string) => join(LOG_DIR, `${name}.log`);

/** the log lines `name` wrote after byte `from` */
function linesSince(name: string, from: number): string[] {
  return readFileSync(logOf(name)).subarray(from).toString('utf8').split('\n').filter(Boolean);
}

const PUT_KEY = 'breakers/redis/failure_threshold';
let restore: (() => void) | undefined;
/** the `up` started in the background, if any: never two at once */
let upDone: Promise<unknown> | undefined;

afterAll(async () => {
  await upDone;
  stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
  restore?.();
}, UP_TIMEOUT_MS);

async function appliedThreshold(base: string): Promise<number | undefined> {
  const body = (await (await fetch(`${base}/health/config`)).json()) as {
    applied: { breakers: Record<string, Record<string, number>> };
  };
  return body.applied.breakers.redis?.failure_threshold;
}

describe('etcd down', () => {
  it(
    'logs one warning per condition and process, not one per retry, and the reconnect',
    async () => {
      const from = new Map(LOGS.map((name) => [name, statSync(logOf(name)).size]));
      const before = etcdGet(PUT_KEY);
      const next = before === '9' ? 8 : 9;
      const pid = stackPid(topology.etcd.name);
      if (pid === undefined) throw new Error('etcd is not running');
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      for (const base of INSTANCES) expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      // /health/config: since when, and the error behind the etcd client's own breaker (which
      // refuses its retries with cockatiel's "circuit breaker is open" every other time)
      for (let i = 0; i < 5; i++) {
        for (const base of INSTANCES) {
          const status = (await (await fetch(`${base}/health/config`)).json()) as {
            connected: boolean;
            disconnectedSince?: string;
            lastError?: string;
          };
          expect(status.connected, base).toBe(false);
          const since = Date.parse(status.disconnectedSince ?? '');
          expect(since, `${base}: ${status.disconnectedSince}`).toBeGreaterThanOrEqual(killedAt - 1000);
          expect(since, `${base}: ${status.disconnectedSince}`).toBeLessThanOrEqual(Date.now());
          expect(status.lastError, base).toBeTruthy();
          expect(status.lastError, base).not.toMatch(/circuit breaker is open/);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      // `up` in the background: the put goes in as soon as etcd takes one, as an operator's
      // might, not after `up` has checked every other process
      const up = spawn(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
        cwd: REPO_ROOT,
        stdio: 'ignore',
      });
      upDone = new Promise((resolve) => up.once('exit', resolve));
      await waitFor(() => portOpen(topology.etcd.port), {
        timeoutMs: 120_000,
        intervalMs: 50,
        what: 'etcd listening again',
      });
      // timed from the moment etcdctl says the put is done: a put sent while etcd is still
      // starting waits in etcdctl, and the instances cannot see it before it is committed
      const putAt = await waitFor(
        () => {
          try {
            etcdPut(PUT_KEY, String(next));
            return Date.now();
          } catch {
            return undefined;
          }
        },
        { timeoutMs: 30_000, intervalMs: 50, what: 'etcd taking a put again' },
      );
      restore = () => (before === undefined ? etcdDel(PUT_KEY) : etcdPut(PUT_KEY, before));
      await waitFor(
        async () => (await Promise.all(INSTANCES.map(appliedThreshold))).every((v) => v === next),
        {
          timeoutMs: 2000,
          intervalMs: 20,
          what: `${PUT_KEY} ${next} on both instances after etcd's restart`,
        },
      );
      expect(Date.now() - putAt).toBeLessThan(2000);
      await upDone;
      await waitFor(
        () =>
          LOGS.every((name) =>
            linesSince(name, from.get(name)!).some((l) => l.includes('etcd reachable again')),
          ),
        { timeoutMs: 30_000, intervalMs: 250, what: 'every process logging its reconnect to etcd' },
      );
      for (const name of LOGS) {
        const lines = linesSince(name, from.get(name)!);
        const unreachable = lines.filter((l) => l.includes('etcd unreachable; serving last good config'));
        const registration = lines.filter(
          (l) => l.includes('instance registration failed') || l.includes('instance lease lost'),
        );
        // one when the connection went; one more could fall due if the outage outlasted 30 s
        expect(unreachable.length, `${name}: ${unreachable.join('\n')}`).toBeGreaterThanOrEqual(1);
        expect(unreachable.length, `${name}: ${unreachable.join('\n')}`).toBeLessThanOrEqual(2);
        expect(registration.length, `${name}: ${registration.join('\n')}`).toBeLessThanOrEqual(4);
        const reconnect = lines.find((l) => l.includes('etcd reachable again'))!;
        expect(JSON.parse(reconnect).unloggedWarnings, name).toBeGreaterThan(0);
        // every line JSON: gRPC's own messages ("excess pings" after a restart) were plain text.
        // Whole lines only: one still being written has no newline yet
        const whole = readFileSync(logOf(name)).subarray(from.get(name)!).toString('utf8');
        for (const line of whole
          .slice(0, whole.lastIndexOf('\n') + 1)
          .split('\n')
          .filter(Boolean))
          expect(() => JSON.parse(line), `${name}: ${line}`).not.toThrow();
      }
      // connected again (a watch cut once more right after the restart may take a moment)
      for (const base of INSTANCES) {
        await waitFor(
          async () => {
            const status = (await (await fetch(`${base}/health/config`)).json()) as Record<string, unknown>;
            return status.connected === true && !('disconnectedSince' in status);
          },
          { timeoutMs: 10_000, intervalMs: 100, what: `${base} connected, no disconnectedSince` },
        );
      }
    },
    UP_TIMEOUT_MS + 120_000,
  );
});
