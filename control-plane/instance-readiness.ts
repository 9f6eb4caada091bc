/**
 * What registered API instances answer at `/health/ready` right now, for `status` and for the
 * drain checks of `lb weight` and `config apply`: `ready`, `not ready` (503: loading its config
 * or draining after SIGTERM) or `not answering` (hung, or gone before its lease ran out). All
 * asked at once, each within 1 s.
 */
export type Readiness = 'ready' | 'not ready' | 'not answering';

export async function readiness(urls: string[]): Promise<Map<string, Readiness>> {
  const answers = await Promise.all(
    urls.map(async (url) => {
      try {
        const res = await fetch(`${url}/health/ready`, { signal: AbortSignal.timeout(1000) });
        await res.body?.cancel();
        return [url, res.ok ? 'ready' : 'not ready'] as const;
      } catch {
        return [url, 'not answering'] as const;
      }
    }),
  );
  return new Map(answers);
}
