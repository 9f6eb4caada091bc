/**
 * etcd SIGKILLed: the instances go on serving from the last good config, and their logs stay
 * readable. While etcd refuses connections, the watch of an instance reconnects every few
 * hundred ms, its errors alternating between two messages, and its registration retries every
 * second; each used to log a warning per failure (about 3.8 lines a second per process, 117 in
 * 31 s from the worker in an outside check). Now the first is logged at once and then at most
 * one per 30 s (src/observability/warn-limiter.ts), and the reconnect says how many it left out.
 *
 * Restarts etcd (`stack up`); leaves the stack healthy.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { INSTANCES } from './helpers/api.js';
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

afterAll(() => {
  stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
}, UP_TIMEOUT_MS);

describe('etcd down', () => {
  it(
    'logs one warning per condition and process, not one per retry, and the reconnect',
    async () => {
      const from = new Map(LOGS.map((name) => [name, statSync(logOf(name)).size]));
      const pid = stackPid(topology.etcd.name);
      if (pid === undefined) throw new Error('etcd is not running');
      process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, OUTAGE_MS));
      for (const base of INSTANCES) expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
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
      }
    },
    UP_TIMEOUT_MS + 120_000,
  );
});
