/**
 * Which registered API instances still serve a tenant: each is asked as a client would, `GET
 * /v1/books?limit=1` with the tenant's `X-Tenant-ID` and no token. An instance whose directory no
 * longer has the tenant answers 404 `tenant_not_found` before anything else is looked at; any
 * other answer (401 asking for a token, 423 readonly, 503) means it still places the tenant
 * somewhere, and no answer within 1 s means it cannot be told (frozen, or gone before its
 * lease ran out). What `tenants delete-rows` waits on before it deletes: an instance that has not
 * applied the removal could still write the tenant's rows after they were deleted.
 */
export interface StillServing {
  id: string;
  url: string;
  /** what it answered: `HTTP 401 unauthorized`, or `no answer within 1000 ms` */
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
        });
        const body = await res.text();
        let code: unknown;
        try {
          code = (JSON.parse(body) as { code?: unknown }).code;
        } catch {
          // not problem+json: not an instance's "no such tenant"
        }
        if (res.status === 404 && code === 'tenant_not_found') return undefined;
        return { id, url, answer: `HTTP ${res.status}${typeof code === 'string' ? ` ${code}` : ''}` };
      } catch {
        return { id, url, answer: `no answer within ${ASK_TIMEOUT_MS} ms` };
      }
    }),
  );
  return answers.filter((a): a is StillServing => a !== undefined);
}
