import { describe, expect, it } from 'vitest';
import { fakeCtlContext } from './fake-ctl-context.js';
import { waitForInstances } from './move-steps.js';

/**
 * A context whose etcd holds one registered instance; each read answers the next of `reads`
 * (the instance's config revision), the first after `firstReadMs` (a command stopped meanwhile).
 */
function etcdOf(reads: number[], firstReadMs: number) {
  let n = 0;
  const ctx = fakeCtlContext({
    getAll: () => ({
      prefix: () => ({
        exec: async () => {
          const at = reads[Math.min(n, reads.length - 1)]!;
          if (n++ === 0) await new Promise((r) => setTimeout(r, firstReadMs));
          const value = JSON.stringify({
            url: 'http://127.0.0.1:1',
            configRevision: at,
            startedAt: '2026-01-01T00:00:00.000Z',
          });
          return {
            header: { revision: '100' },
            kvs: [{ key: Buffer.from('/sg/instances/api-1'), value: Buffer.from(value), mod_revision: '99' }],
          };
        },
      }),
    }),
  });
  return { ctx, reads: () => n };
}

describe('waitForInstances', () => {
  it('reads again before giving up when its deadline ran out during a read (a command stopped meanwhile)', async () => {
    // the first read saw the instance behind, and answered only after the wait's whole time
    const { ctx, reads } = etcdOf([5, 10], 150);
    await expect(waitForInstances(ctx, 10, 100, 'acme')).resolves.toBe(1);
    expect(reads()).toBe(2);
  });

  it('gives up, naming the instance, when a read begun after the deadline still sees it behind', async () => {
    const { ctx, reads } = etcdOf([5], 0);
    await expect(waitForInstances(ctx, 10, 250, 'acme')).rejects.toThrow(
      'instance api-1 (at revision 5) did not apply revision 10 within 250 ms',
    );
    expect(reads()).toBeGreaterThanOrEqual(2);
  });
});
