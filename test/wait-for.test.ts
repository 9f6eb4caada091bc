/**
 * test/helpers/wait-for.ts itself (no stack needed): a failed `expect` inside the polled check
 * fails at once instead of being swallowed and polled again; any other error is polled again; a
 * timeout throws.
 */
import { describe, expect, it } from 'vitest';
import { waitFor } from './helpers/wait-for.js';

describe('waitFor', () => {
  it('rethrows a failed expect inside the check at once, even when a later poll would succeed', async () => {
    let calls = 0;
    const polled = waitFor(
      () => {
        calls += 1;
        if (calls === 1) expect(500, 'first answer').toBe(200);
        return true;
      },
      { timeoutMs: 2000, intervalMs: 5 },
    );
    await expect(polled).rejects.toThrow(/first answer/);
    expect(calls).toBe(1);
  });

  it('polls again after any other error and returns the first truthy value', async () => {
    let calls = 0;
    const value = await waitFor(
      () => {
        calls += 1;
        if (calls < 3) throw new Error('not yet');
        return calls;
      },
      { timeoutMs: 2000, intervalMs: 5 },
    );
    expect(value).toBe(3);
  });

  it('throws on timeout, naming what it waited for and the last error', async () => {
    await expect(
      waitFor(
        () => {
          throw new Error('still down');
        },
        { timeoutMs: 50, intervalMs: 5, what: 'the thing' },
      ),
    ).rejects.toThrow(/waiting for the thing.*still down/);
  });
});
