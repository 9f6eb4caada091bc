/**
 * A unit test's request to an in-process app (`createApp`): tenant `acme`, a JSON body, a member
 * token, an Idempotency-Key and a consistency token when given; the answer's text read once, and
 * parsed when it is JSON.
 */
export interface CallOptions {
  body?: unknown;
  token?: string;
  key?: string;
  consistency?: string;
}

/** an answer: its status, its text, and that text parsed when it is JSON */
export type CallResult = Awaited<ReturnType<typeof callApp>>;

export async function callApp(
  app: { request: (path: string, init: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  { body, token, key, consistency }: CallOptions = {},
) {
  const headers: Record<string, string> = { 'X-Tenant-ID': 'acme' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (key !== undefined) headers['Idempotency-Key'] = key;
  if (consistency !== undefined) headers['X-Consistency-Token'] = consistency;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const json = text && res.headers.get('Content-Type')?.includes('json') ? JSON.parse(text) : undefined;
  return { res, status: res.status, text, json };
}
