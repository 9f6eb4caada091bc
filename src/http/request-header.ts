/**
 * `requestHeader(c, name)`: a request header, through `Services.requestHeader` when the runtime
 * gives one (Node reads it off the request without building a Fetch Headers), else through
 * `c.req.header()`. Same answer either way: the value, several values joined with ", ", or
 * undefined. Needs `services` set on the context (createApp's first middleware does it).
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';

export function requestHeader(c: Context<AppEnv>, name: string): string | undefined {
  const read = c.get('services').requestHeader;
  return read ? read(c, name) : c.req.header(name);
}
