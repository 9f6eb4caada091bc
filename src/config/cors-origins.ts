/**
 * `cors/allowed_origins`: the browser origins allowed to call the API from another site (CORS,
 * http/cors.ts). The value is a list of origins, separated by commas or blanks
 * (`https://app.example.com, http://localhost:5173`), or the same as a JSON array of strings
 * (what `config apply` writes for a YAML list); empty, the default, allows none; `*` alone allows
 * every origin (the API takes bearer tokens, never cookies, so no credentials are shared).
 *
 * Each origin must be written as a browser sends it in `Origin` (RFC 6454 §6.2): `http` or
 * `https`, the host in lower case, no default port, no path, no trailing slash. A value written
 * otherwise would never match, so it is refused with the spelling that would (`HTTPS://App.Example.com/`
 * → `https://app.example.com`), and the last good value stays in force.
 */
import { z } from 'zod';
import { type Listed, parseList } from './list-text.js';

export const CORS_ORIGINS_KEY = 'cors/allowed_origins';
/** at most this many origins; more is a list that belongs in a frontend rule */
export const MAX_CORS_ORIGINS = 100;
/** a host name (as the URL parser writes it: lower case, IDNs as `xn--`), IPv4, or [IPv6] */
const ORIGIN_HOST = /^(?:[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?|\[[0-9a-f:.]+\])$/;

/** why `entry` is not an origin a browser sends, or undefined when it is one */
function originProblem(entry: string): string | undefined {
  const shown = JSON.stringify(entry.slice(0, 80));
  let url: URL;
  try {
    url = new URL(entry);
  } catch {
    return `${shown} is not an origin: write scheme://host[:port], as https://app.example.com`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `${shown} is not an origin: the scheme must be http or https`;
  // the URL parser takes `;`, `'`, `$`, `*` and more in a host, which no page's host has (DNS
  // names are letters, digits and `-`; IDNs arrive as `xn--`): `https://a.example;` is a typo, and
  // HAProxy's runtime API would read a `;` as the end of a command (control-plane/lb/cors-sync.ts)
  if (!ORIGIN_HOST.test(url.hostname))
    return `${shown} is not an origin: the host must be letters, digits, "-", "_" and "." (or an IP address)`;
  // port 0 is no port a page is served from (the URL parser takes it; 65536 and up it refuses)
  if (url.port === '0') return `${shown} is not an origin: port 0 is not a port a page is served from`;
  if (url.origin !== entry) {
    const plain = url.username === '' && url.password === '' && url.search === '' && url.hash === '';
    return plain
      ? `${shown} is not written as a browser sends it: write ${JSON.stringify(url.origin)}`
      : `${shown} is not an origin: no credentials, path, query or fragment`;
  }
  return undefined;
}

/** the origins of a value, or the first reason it is refused */
export function parseCorsOrigins(text: string): Listed {
  return parseList(text, {
    star: 'allows every origin',
    maxItems: MAX_CORS_ORIGINS,
    noun: 'origins',
    problem: originProblem,
  });
}

export const corsOriginsSchema = z.string().transform((text, ctx): readonly string[] => {
  const r = parseCorsOrigins(text);
  if (r.ok) return r.items;
  ctx.addIssue({ code: 'custom', message: r.reason });
  return z.NEVER;
});
