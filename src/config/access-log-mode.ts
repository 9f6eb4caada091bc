/**
 * `http/access_log`: which answers an API instance logs one line each for (`request`, at info;
 * http/access-line.ts builds it): `off`, the default, none; `errors`, those of status 400 and up
 * (a refusal, a 503 of an open breaker, a client gone: 499); `all`, every answer of the app. Live
 * like every key. Off by default: a line per request costs CPU on the hot path (a cached read
 * answers in well under a millisecond), and HAProxy in front can log instead.
 */
import { z } from 'zod';

export const ACCESS_LOG_KEY = 'http/access_log';
export const ACCESS_LOG_MODES = ['off', 'errors', 'all'] as const;
export type AccessLogMode = (typeof ACCESS_LOG_MODES)[number];

/** the value with surrounding blanks ignored (a newline from `echo … | etcdctl put`), as numbers' */
export const accessLogSchema = z
  .string()
  .transform((s) => s.trim())
  .pipe(z.enum(ACCESS_LOG_MODES, `must be one of ${ACCESS_LOG_MODES.join(', ')}`));

/** whether an answer of `status` gets its line under `mode` */
export function accessLogged(mode: AccessLogMode, status: number): boolean {
  return mode === 'all' || (mode === 'errors' && status >= 400);
}
