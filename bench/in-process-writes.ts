/**
 * Borrow + return pairs run in THIS process, over the API's own data services: the domain's
 * `borrowBook` / `returnLoan` on SqlDataAccess (mysql2 pools, the shard router and the breakers,
 * from the live etcd config — `createDataServices`, as src/entry/node.ts builds them), against
 * the stack's masters. No HTTP server, JSON, JWT check, HAProxy or load generator takes a share,
 * so the rate is what the data tier and the email pipeline allow: the ceiling of the write path.
 * Used by `npm run bench` (the `loans-in-process` scenarios) and bench/data-path.ts.
 *
 * The lending tenants' members act with the principal their bench token verifies to (the
 * API's own token check, once, before the run). A write that fails — a domain failure such as
 * `no_copy_available`, or a thrown dependency error — is counted by its code or error name and
 * the loop goes on; a thrown error is counted as a socket error would be over HTTP.
 */
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { createDataServices } from '../src/db/create-data-services.js';
import type { DataAccess, TenantRef } from '../src/domain/data-access.js';
import { borrowBook, returnLoan } from '../src/domain/loans.js';
import type { Principal } from '../src/domain/member-tokens.js';
import type { Result } from '../src/domain/result.js';
import { parseEnv } from '../src/env.js';
import { createLogger } from '../src/observability/logger.js';
import { createPromMetrics } from '../src/observability/prom-metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { stackEnv } from '../stack/stack-env.js';
import { type LoadResult, percentile } from './load.js';
import { pick } from './scenarios.js';
import type { TenantFixture } from './setup.js';

interface Lender {
  tenant: TenantRef;
  book: string;
  principals: Principal[];
}

export interface InProcessWrites {
  /** `inFlight` loops of borrow-then-return pairs for `seconds`; each write is one "request" */
  run(opts: { inFlight: number; seconds: number }): Promise<LoadResult>;
  close(): Promise<void>;
}

/** Connects to etcd and the shards as an API instance would, for the given lending tenants. */
export async function openInProcessWrites(
  lenderFixtures: readonly TenantFixture[],
): Promise<InProcessWrites> {
  const env = parseEnv({ ...process.env, ...stackEnv() }, { require: ['SHARDGATE_JWT_SECRET'] });
  const logger = createLogger({ level: 'warn', base: { instance: 'bench-in-process' } });
  const etcd = createEtcdClient({ endpoints: env.SHARDGATE_ETCD_ENDPOINTS });
  const config = new EtcdConfigStore({ client: etcd, prefix: env.SHARDGATE_ETCD_PREFIX, logger });
  const metrics = createPromMetrics();
  const breakers = new BreakerRegistry({ config, logger, metrics });
  const services = createDataServices({
    env,
    processEnv: process.env,
    config,
    logger,
    breakers,
    metrics,
    instanceId: 'bench-in-process',
  });
  const close = async () => {
    await services.close();
    await config.close();
    etcd.close();
  };
  try {
    await config.start();
    const lenders: Lender[] = await Promise.all(
      lenderFixtures.map(async (t) => {
        const entry = config.current().tenants.get(t.id);
        if (!entry) throw new Error(`tenant ${t.id} is not in the live config`);
        const principals = await Promise.all(
          t.members.map(async (m) => {
            const check = await services.services.memberTokens.verify(m.token);
            if (!check.ok) throw new Error(`the token of member ${m.id} does not verify: ${check.reason}`);
            return check.principal;
          }),
        );
        return {
          tenant: { id: t.id, shardId: entry.shard, name: entry.name },
          book: t.books[0]!,
          principals,
        };
      }),
    );
    return { run: (opts) => lend(services.services.data, lenders, opts), close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function lend(
  data: DataAccess,
  lenders: readonly Lender[],
  { inFlight, seconds }: { inFlight: number; seconds: number },
): Promise<LoadResult> {
  const latencies: number[] = [];
  /** failed writes by domain code or error name (as status codes are over HTTP) */
  const codes: Record<string, number> = {};
  let thrown = 0;
  const count = (code: string) => {
    codes[code] = (codes[code] ?? 0) + 1;
  };
  const timed = async <T>(fn: () => Promise<{ result: Result<T> }>): Promise<T | undefined> => {
    const t0 = performance.now();
    try {
      const { result } = await fn();
      if (result.ok) return result.value;
      count(result.code);
      return undefined;
    } catch (error) {
      thrown++;
      count(error instanceof Error ? error.name : 'thrown');
      return undefined;
    } finally {
      latencies.push(performance.now() - t0);
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const { tenant, book, principals } = pick(lenders);
        const principal = pick(principals);
        const loan = await timed(() => borrowBook(data, tenant, principal, book));
        if (loan && performance.now() < until)
          await timed(() => returnLoan(data, tenant, principal, loan.id));
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const sorted = latencies.sort((a, b) => a - b);
  const failed = Object.values(codes).reduce((a, b) => a + b, 0);
  return {
    seconds: elapsed,
    requests: latencies.length,
    rps: latencies.length / elapsed,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? 0,
    non2xx: failed - thrown,
    socketErrors: thrown,
    errors: failed,
    statusCodes: codes,
    // this process did the data work itself: its CPU is the client's, not a generator's
    generatorCpuPercent: ((cpu.user + cpu.system) / 1000 / (elapsed * 1000)) * 100,
  };
}
