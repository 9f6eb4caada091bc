/**
 * HTTP calls to the library API of the local stack, through HAProxy (default) or one instance.
 */
import { apiUrls, haproxyUrl } from '../../stack/urls.js';

/** the tests' names for stack/urls.ts: HAProxy's frontend, and each instance directly */
export const HAPROXY = haproxyUrl;
export const INSTANCES = apiUrls;

export interface ApiAnswer {
  status: number;
  headers: Headers;
  /** parsed JSON body, undefined when empty or not JSON */
  // biome-ignore lint/suspicious/noExplicitAny: tests read answer fields freely
  json: any;
  text: string;
}

export interface CallOptions {
  tenant?: string | null;
  token?: string;
  body?: unknown;
  /** raw body text or bytes (sent as is) */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
  base?: string;
}

export async function api(method: string, path: string, options: CallOptions = {}): Promise<ApiAnswer> {
  const { tenant, token, body, raw, headers = {}, base = HAPROXY } = options;
  const h: Record<string, string> = { ...headers };
  if (tenant) h['X-Tenant-ID'] = tenant;
  if (token) h.Authorization = `Bearer ${token}`;
  if (
    (body !== undefined || raw !== undefined) &&
    !Object.keys(h).some((k) => k.toLowerCase() === 'content-type')
  ) {
    h['Content-Type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, {
    method,
    headers: h,
    body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Register a member and log in; returns the member, its token and the registration answer. */
export async function registerAndLogin(
  tenant: string,
  email: string,
  { password = 'correct horse battery', base }: { password?: string; base?: string } = {},
): Promise<{ member: { id: string; role: string; email: string }; token: string; registered: ApiAnswer }> {
  const registered = await api('POST', '/v1/members', {
    tenant,
    base,
    body: { email, name: email.split('@')[0], password },
  });
  if (registered.status !== 201)
    throw new Error(`register ${email}@${tenant}: ${registered.status} ${registered.text}`);
  const login = await api('POST', '/v1/auth/login', { tenant, base, body: { email, password } });
  if (login.status !== 200) throw new Error(`login ${email}@${tenant}: ${login.status} ${login.text}`);
  return { member: registered.json, token: login.json.token, registered };
}
