/**
 * RFC 9457 problem details, the shape of every error answer (CONTRACT.md §6):
 * `{"type","title","status","detail","code","requestId"}` as `application/problem+json`.
 * Throw `ProblemError` anywhere below a route; the app's error handler renders it.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppEnv } from '../app-env.js';
import { setHeader, textBody } from './response-headers.js';

export interface ProblemInit {
  status: ContentfulStatusCode;
  /** stable machine-readable code, e.g. `validation_failed`, `tenant_not_found` */
  code: string;
  title: string;
  detail?: string;
  headers?: Record<string, string>;
  /** extra members, e.g. `errors` listing invalid fields */
  extra?: Record<string, unknown>;
}

export class ProblemError extends Error {
  constructor(readonly init: ProblemInit) {
    super(init.detail ?? init.title);
    this.name = 'ProblemError';
  }
}

export const PROBLEM_TYPE_BASE = 'https://shardgate.dev/problems/';

export function problemResponse(c: Context, init: ProblemInit): Response {
  const requestId = (c.get('requestId') as string | undefined) ?? '';
  const body = {
    type: `${PROBLEM_TYPE_BASE}${init.code}`,
    title: init.title,
    status: init.status,
    detail: init.detail ?? init.title,
    code: init.code,
    requestId,
    ...init.extra,
  };
  const app = c as Context<AppEnv>;
  for (const [name, value] of Object.entries(init.headers ?? {})) setHeader(app, name, value);
  return textBody(app, JSON.stringify(body), init.status, 'application/problem+json');
}
