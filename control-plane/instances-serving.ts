/**
 * Which registered API instances still serve a tenant: each is asked as a client would, `GET
 * /v1/books?limit=1` with the tenant's `X-Tenant-ID` and no token. An instance whose directory no
 * longer has the tenant answers 404 `tenant_not_found` before anything else is looked at; any
 * other answer (401 asking for a token, 423 readonly, 503) means it still places the tenant
 * somewhere, and no answer within 1 s, a refused connection or an answer from another process
 * (its `X-Served-By` not the instance's id) means it cannot be told. What `tenants delete-rows`
 * asks of an instance registered after the removal, and of every instance when the removal's
 * revision is not recorded (tenant-delete-rows.ts): it needs each registered URL to reach its
 * instance from where the command runs.
 */
export interface StillServing {
  id: string;
  url: string;
  /** what it answered (`HTTP 200`), or why it could not be asked (`no answer within 1000 ms`) */
  answer: string;
}

const ASK_TIMEOUT_MS = 1000;

export async function instancesServing(
  instances: { id: string; url: string }[],
  tenant: string,
): Promise<StillServing[]> {
  const answers = await Promise.all(
    instances.map(async ({ id, url }): Promise<StillServing | undefined> => {
      try {
        const res = await fetch(`${url}/v1/books?limit=1`, {
          headers: { 'X-Tenant-ID': tenant },
          signal: AbortSignal.timeout(ASK_TIMEOUT_MS),
          redirect: 'error',
        });
        const body = await res.text();
        // the registered URL reached another process (a port shared by instances of several
        // hosts, the CLI on another machine): its answer says nothing of this instance
        const servedBy = res.headers.get('X-Served-By');
        if (servedBy !== id)
          return { id, url, answer: `answered as ${servedBy ?? 'something else'}, not as ${id}` };
        let code: unknown;
        try {
          code = (JSON.parse(body) as { code?: unknown }).code;
        } catch {
          // not problem+json: not an instance's "no such tenant"
        }
        if (res.status === 404 && code === 'tenant_not_found') return undefined;
        return { id, url, answer: `HTTP ${res.status}${typeof code === 'string' ? ` ${code}` : ''}` };
      } catch (error) {
        const cause = (error as { cause?: { code?: string } }).cause?.code;
        return {
          id,
          url,
          answer:
            cause === 'ECONNREFUSED'
              ? 'connection refused'
              : (error as Error).name === 'TimeoutError'
                ? `no answer within ${ASK_TIMEOUT_MS} ms`
                : `not asked: ${(error as { cause?: { message?: string } }).cause?.message || (error as Error).message}`,
        };
      }
    }),
  );
  return answers.filter((a): a is StillServing => a !== undefined);
}
