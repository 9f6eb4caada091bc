import { describe, expect, it } from 'vitest';
import { TenantEpochRetirers } from './tenant-epoch-retirers.js';

function setup(options: { maxTenantsPerSecond?: number; idleMs?: number } = {}) {
  let now = 1_000_000;
  const writes: [string, number][] = [];
  const retirers = new TenantEpochRetirers(
    (tenantId) => async (value) => {
      writes.push([tenantId, value]);
    },
    () => {},
    { minIntervalMs: 0, now: () => now, ...options },
  );
  return { retirers, writes, advance: (ms: number) => (now += ms) };
}

describe('TenantEpochRetirers', () => {
  it("moves each tenant's own epoch", async () => {
    const { retirers, writes } = setup();
    await retirers.retire('acme');
    await retirers.retire('globex');
    expect(writes.map(([t]) => t)).toEqual(['acme', 'globex']);
  });

  it('answers undefined past its tenant moves a second (the caller moves the global epoch), and takes them again a second later', async () => {
    const { retirers, writes, advance } = setup({ maxTenantsPerSecond: 2 });
    await retirers.retire('a');
    await retirers.retire('b');
    expect(retirers.retire('c')).toBeUndefined();
    expect(writes.map(([t]) => t)).toEqual(['a', 'b']);
    advance(1000);
    await retirers.retire('c');
    expect(writes.map(([t]) => t)).toEqual(['a', 'b', 'c']);
  });

  it('counts a tenant once however many of its writes ask within the second (they share its moves)', async () => {
    const { retirers, writes } = setup({ maxTenantsPerSecond: 2 });
    const calls = Array.from({ length: 21 }, () => retirers.retire('acme'));
    expect(calls.every((c) => c !== undefined)).toBe(true);
    await Promise.all(calls);
    expect(retirers.retire('globex')).toBeDefined();
    expect(writes.every(([t]) => t === 'acme' || t === 'globex')).toBe(true);
  });

  it("after a failed move of one tenant, another tenant's caller does not wait for its move (one etcd for all)", async () => {
    let now = 1_000_000;
    const failures: string[] = [];
    let etcdUp = false;
    const retirers = new TenantEpochRetirers(
      () => () =>
        etcdUp
          ? Promise.resolve()
          : new Promise<void>((_, reject) => setTimeout(() => reject(new Error('down')), 20)),
      (_e, tenantId) => failures.push(tenantId),
      { minIntervalMs: 0, now: () => now },
    );
    await retirers.retire('t1');
    expect(failures).toEqual(['t1']);
    await retirers.retire('t2');
    expect(failures).toEqual(['t1']); // resolved before its own move failed
    await new Promise((r) => setTimeout(r, 40));
    expect(failures).toEqual(['t1', 't2']); // it was tried in the background
    // etcd back: a move written resets the quiet time, callers wait for theirs again
    etcdUp = true;
    now += 6000;
    await retirers.retire('t3');
    let waited = false;
    etcdUp = false;
    const next = retirers.retire('t4')!.then(() => {
      waited = true;
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(waited).toBe(false);
    await next;
  });

  it('drops the retirers of tenants idle for idleMs', async () => {
    const { retirers, advance } = setup({ idleMs: 5000 });
    await retirers.retire('a');
    advance(3000);
    await retirers.retire('b');
    expect(retirers.size).toBe(2);
    advance(2500);
    await retirers.retire('b');
    expect(retirers.size).toBe(1);
  });
});
