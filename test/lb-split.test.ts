/**
 * Weighted HAProxy (issue "Foundation" Done-when 3, issue "Control plane" Done-when 1):
 * requests through :8080 split across the API instances in proportion to their etcd weights
 * (±10%), a weight change lands within 1 s through `lb sync --watch`, and weight 0 drains an
 * instance with zero failed requests.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { HAPROXY } from './helpers/api.js';
import { etcdGet, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const [a1, a2] = topology.apis.map((a) => a.id) as [string, string];
const saved = topology.apis.map((a) => [a.id, etcdGet(`lb/weights/${a.id}`)] as const);
afterAll(async () => {
  for (const [id, w] of saved)
    etcdPut(`lb/weights/${id}`, w ?? String(topology.apis.find((a) => a.id === id)!.weight));
  await new Promise((r) => setTimeout(r, 1500));
});

async function split(n: number): Promise<{ counts: Record<string, number>; failures: number }> {
  const counts: Record<string, number> = {};
  let failures = 0;
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${HAPROXY}/health`);
    await res.arrayBuffer();
    if (res.status !== 200) failures++;
    const by = res.headers.get('X-Served-By') ?? 'none';
    counts[by] = (counts[by] ?? 0) + 1;
  }
  return { counts, failures };
}

function share(counts: Record<string, number>, id: string): number {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (counts[id] ?? 0) / total;
}

/** wait until HAProxy's runtime weights match (observed through the traffic split of a short probe) */
async function settle(expected1: number): Promise<void> {
  await waitFor(async () => Math.abs(share((await split(40)).counts, a1) - expected1) <= 0.1, {
    timeoutMs: 4000,
    intervalMs: 100,
    what: `api-1 share ${expected1}`,
  });
}

describe('weighted HAProxy driven by etcd', () => {
  it('splits 300 requests 1:1 with equal weights (±10%)', async () => {
    etcdPut(`lb/weights/${a1}`, '1');
    etcdPut(`lb/weights/${a2}`, '1');
    await settle(0.5);
    const { counts, failures } = await split(300);
    expect(failures).toBe(0);
    expect(Math.abs(share(counts, a1) - 0.5)).toBeLessThanOrEqual(0.1);
    expect(Math.abs(share(counts, a2) - 0.5)).toBeLessThanOrEqual(0.1);
  });

  it('applies weight 3:1 within 1 s of the put and splits 400 requests 3:1 (±10%)', async () => {
    const put = Date.now();
    etcdPut(`lb/weights/${a1}`, '3');
    // the put must be in force within 1 s: probe with a fresh window right after the deadline
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - put))));
    const { counts, failures } = await split(400);
    expect(failures).toBe(0);
    expect(Math.abs(share(counts, a1) - 0.75)).toBeLessThanOrEqual(0.1);
  });

  it('weight 0 drains an instance with zero failed requests', async () => {
    etcdPut(`lb/weights/${a1}`, '1');
    await settle(0.5);
    const load = split(300);
    await new Promise((r) => setTimeout(r, 100));
    etcdPut(`lb/weights/${a1}`, '0');
    const during = await load;
    expect(during.failures).toBe(0);
    await new Promise((r) => setTimeout(r, 1000));
    const after = await split(100);
    expect(after.failures).toBe(0);
    expect(after.counts[a1] ?? 0).toBe(0);
  });
});
