/**
 * shardgate-ctl against an etcd that cannot serve (CONTRACT.md §5: exit 2, one line): frozen
 * (the stack's etcd SIGSTOPped: the kernel still accepts connections, nobody answers) and not
 * listening at all. Each gives up within its budget (README: 2000 ms to dial, 3000 ms a call; the
 * line names the one that ran out) with `shardgate-ctl: etcd unreachable at <endpoints>: <reason>`,
 * the reason in operator words and no gRPC internals, and the process ends as soon as that line is
 * written. The call deadline against a server that answers the dial but never a call is a unit
 * test beside the code (control-plane/ctl-context.test.ts): only a stand-in for etcd does that.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { ctl, ctlAsync, type TimedCtlResult } from './helpers/ctl.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';
import { stackPid } from './helpers/stack.js';
import { waitFor } from './helpers/wait-for.js';

/**
 * A sanity bound only: the budgets themselves (2000 ms dial + 3000 ms call) are asserted through
 * the line's "no answer within N ms"; this leaves room for the CLI's start on a loaded box (the
 * frozen case measured 3.4-4 s, README) but still catches a command that waits on and on.
 */
const GAVE_UP_WITHIN_MS = 15_000;

/** the line of an unreachable etcd, its reason in operator words */
function expectUnreachableLine(r: TimedCtlResult, endpoints: string, reason: RegExp): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stdout).toBe('');
  const escaped = endpoints.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  expect(r.stderr).toMatch(
    new RegExp(`^shardgate-ctl: etcd unreachable at ${escaped}: ${reason.source}\\n$`),
  );
  expect(r.stderr).not.toMatch(/LB pick|DEADLINE_EXCEEDED|UNAVAILABLE|grpc|Resolution note|name resolution/i);
  expect(r.lingerMs, 'exits as soon as its line is written').toBeLessThan(500);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, topology.host, () => resolve((server.address() as { port: number }).port)),
  );
}

/** a port nothing listens on: bound once by us, then closed */
async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((r) => server.close(r));
  return port;
}

describe('shardgate-ctl with etcd unreachable', () => {
  it('frozen etcd (SIGSTOP): exit 2 within its budgets, one line "no answer within … ms", no gRPC wording', async () => {
    const pid = stackPid(topology.etcd.name)!;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGSTOP');
    let r: TimedCtlResult;
    try {
      r = await ctlAsync(['status']);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expectUnreachableLine(r, ETCD_ENDPOINT, /no answer within \d+ ms/);
    expect(r.elapsedMs).toBeLessThan(GAVE_UP_WITHIN_MS);
    // and once it runs again, the same command answers
    await waitFor(() => ctl(['status']).code === 0, { timeoutMs: 15_000, what: 'status after SIGCONT' });
  });

  it('nothing listening at the endpoint: exit 2 at once with "connection refused"', async () => {
    const url = `http://${topology.host}:${await closedPort()}`;
    const r = await ctlAsync(['status'], { SHARDGATE_ETCD_ENDPOINTS: url });
    expectUnreachableLine(r, url, /connection refused/);
    // "at once": had it waited out the dial's budget the reason would be "no answer within 2000 ms"
    expect(r.elapsedMs).toBeLessThan(GAVE_UP_WITHIN_MS);
  });

  it('an endpoint with a password or a path is a user error (exit 1), the password never printed', () => {
    for (const [url, why] of [
      [`http://user:sekret@${topology.host}:2379`, 'must not hold a user or password'],
      [`http://${topology.host}:2379/some/path`, 'without a path or query'],
    ] as const) {
      const r = ctl(['status'], { SHARDGATE_ETCD_ENDPOINTS: url });
      expect([r.code, r.stdout], r.stderr).toEqual([1, '']);
      expect(r.stderr).toMatch(
        new RegExp(
          `^shardgate-ctl: status: invalid environment variable SHARDGATE_ETCD_ENDPOINTS: [^\\n]*${why}`,
        ),
      );
      expect(r.stderr).not.toContain('sekret');
    }
  });
});
