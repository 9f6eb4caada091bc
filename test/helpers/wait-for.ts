export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  what?: string;
}

/**
 * Poll `check` until it returns a truthy value (returned) or the time is up (throws, naming
 * `what`, the last value and the last error). `check` runs at least once; `options` may be just
 * the timeout in ms.
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
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  } while (Date.now() < deadline);
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}${lastError ? `, last error ${String(lastError)}` : ''}`,
  );
}
