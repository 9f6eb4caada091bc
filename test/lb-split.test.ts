/**
 * Weighted HAProxy (issue "Foundation", issue "Control plane"): GETs of /health through :8080
 * split across the API instances (`X-Served-By`) in proportion to their weights in etcd
 * (`lb/weights/<id>`, defaults 1:1) within ±10 percentage points; a weight change lands within
 * 1 s through `lb sync --watch`; weight 0 drains an instance with zero failed requests.
 * The weights found before the file are put back after it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { HAPROXY } from './helpers/api.js';
import { etcdGet, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/stack.js';

const ids = topology.apis.map((a) => a.id);
const [a1, a2] = ids as [string, string];
const defaults = new Map<string, number>(topology.apis.map((a) => [a.id, a.weight]));
const saved = ids.map((id) => [id, etcdGet(`lb/weights/${id}`)] as const);

afterAll(async () => {
  for (const [id, w] of saved) etcdPut(`lb/weights/${id}`, w ?? String(defaults.get(id)));
  // the next file starts with HAProxy splitting by the restored weights
  await settle(expectedShares());
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

/** the share each instance should get from the weights in etcd */
function expectedShares(): Map<string, number> {
  const weights = ids.map((id) => [id, Number(etcdGet(`lb/weights/${id}`) ?? defaults.get(id))] as const);
  const total = weights.reduce((a, [, w]) => a + w, 0);
  if (!(total > 0)) throw new Error(`every instance has weight 0: ${JSON.stringify(weights)}`);
  return new Map(weights.map(([id, w]) => [id, w / total]));
}

/** wait until the traffic split of short probes matches `expected` (HAProxy has the weights) */
async function settle(expected: Map<string, number>): Promise<void> {
  await waitFor(
    async () => {
      const { counts } = await split(40);
      return [...expected].every(([id, s]) => Math.abs(share(counts, id) - s) <= 0.1);
    },
    { timeoutMs: 4000, intervalMs: 100, what: `split ${JSON.stringify([...expected])}` },
  );
}

describe('weighted HAProxy driven by etcd', () => {
  it('splits 300 GETs in proportion to the weights in etcd (±10%), every answer naming its instance', async () => {
    if (saved.every(([, w]) => w === undefined)) {
      for (const id of ids) etcdPut(`lb/weights/${id}`, String(defaults.get(id)));
    }
    const expected = expectedShares();
    await settle(expected);
    const { counts, failures } = await split(300);
    expect(failures).toBe(0);
    expect(counts.none ?? 0).toBe(0);
    for (const [id, s] of expected) expect(Math.abs(share(counts, id) - s), id).toBeLessThanOrEqual(0.1);
  });

  it('splits 1:1 with equal weights', async () => {
    etcdPut(`lb/weights/${a1}`, '1');
    etcdPut(`lb/weights/${a2}`, '1');
    await settle(new Map([[a1, 0.5]]));
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
    await settle(new Map([[a1, 0.5]]));
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
