/**
 * The fields of an access log line (config/access-log-mode.ts says which answers get one): what
 * was asked, how it was answered, in how long, for which tenant, from where. No header value but
 * the ones the API answers (`X-Request-Id`, the caller's own when it is short and plain:
 * http/request-id.ts): never `Authorization`, a token or a body. The path is
 * cut at ACCESS_PATH_MAX characters (a 16 KiB path was echoed whole), its query left out (a
 * `cursor` or an `author` filter is the caller's). pino writes every string as JSON, so a path's
 * control characters cannot forge a line.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { TenantRef } from '../domain/data-access.js';

export const ACCESS_PATH_MAX = 256;

export interface AccessLine {
  requestId: string | undefined;
  method: string;
  path: string;
  route: string;
  status: number;
  ms: number;
  tenant?: string;
  shard?: string;
  readFrom?: string;
  cache?: string;
}

/** `max`, or one less where that would split a surrogate pair (a decoded emoji: a review) */
function cutAt(text: string, max: number): number {
  const last = text.charCodeAt(max - 1);
  return last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
}

export function accessLine(c: Context<AppEnv>, route: string, ms: number): AccessLine {
  const path = c.req.path;
  const headers = c.res.headers;
  const line: AccessLine = {
    requestId: c.get('requestId'),
    method: c.req.method,
    path: path.length > ACCESS_PATH_MAX ? `${path.slice(0, cutAt(path, ACCESS_PATH_MAX))}…` : path,
    route,
    status: c.res.status,
    ms: Math.round(ms * 10) / 10,
  };
  // a tenant's id only once the /v1 middleware found it (an unknown tenant's is the caller's text)
  const tenant = (c.get('tenant') as TenantRef | undefined)?.id;
  if (tenant !== undefined) line.tenant = tenant;
  const shard = headers.get('X-Shard');
  if (shard !== null) line.shard = shard;
  const readFrom = headers.get('X-Read-From');
  if (readFrom !== null) line.readFrom = readFrom;
  const cache = headers.get('X-Cache');
  if (cache !== null) line.cache = cache;
  return line;
}
