/**
 * `work`, or a rejection with `Error(message)` once `ms` have passed, whichever comes first; the
 * timer is cleared either way. `work` itself is not stopped: a late rejection of it is swallowed
 * (the caller has had its answer). For a call that must be abandoned (and counted) as a
 * dependency failure, use the breaker's call timeout (circuit-breaker.ts) instead.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  work.catch(() => {});
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
