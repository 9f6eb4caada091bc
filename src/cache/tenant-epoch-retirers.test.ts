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
