export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  what?: string;
}

/** a failed `expect` (vitest's AssertionError, also `expect.fail`/`assert`) */
function isAssertionError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AssertionError';
}

/**
 * Poll `check` until it returns a truthy value (returned) or the time is up (throws, naming
 * `what`, the last value and the last error). `check` runs at least once; `options` may be just
 * the timeout in ms. Any other error `check` throws is taken as "not yet" and polled again, but a
 * failed `expect` inside `check` is rethrown at once: it must fail the test, not be retried away.
 */
export async function waitFor<T>(
  check: () => Promise<T> | T,
  options: number | WaitOptions = {},
): Promise<NonNullable<T>> {
  const {
    timeoutMs = 5000,
    intervalMs = 50,
    what = 'condition',
  } = typeof options === 'number' ? { timeoutMs: options } : options;
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  do {
    try {
      last = await check();
      if (last) return last as NonNullable<T>;
    } catch (error) {
      if (isAssertionError(error)) throw error;
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  } while (Date.now() < deadline);
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}${lastError ? `, last error ${String(lastError)}` : ''}`,
  );
}
