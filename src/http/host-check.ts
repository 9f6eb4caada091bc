/**
 * The 421 of a request whose `Host` is not a name `http/allowed_hosts` lists (config/allowed-hosts.ts):
 * DNS rebinding — a page on another site whose name was pointed at an instance — reads nothing
 * and writes nothing. Checked first, for every path (`/health/config` is what such a page would
 * read), before CORS and before the tenant.
 *
 * Contract: the list empty or `*` alone → every request passes. Otherwise a request passes when
 * its `Host`, without the port, lower-cased and without a final dot, is listed, is under a listed
 * `*.name`, is an IP address or `localhost`, or is missing or empty (HTTP/1.0: HAProxy's health
 * checks) — and so is the authority of an absolute-form target (`GET http://name/…`, which
 * RFC 9112 §3.2.2 puts in the Host's place). Anything else gets 421 `host_not_allowed` naming the
 * host and the key. Two `Host` headers (joined with ", ") never match; the Node entry answers
 * them 400 before (raw-request-guard.ts). The API instances and the email worker's HTTP port
 * (entry/worker-http.ts) check; HAProxy's stats port does not (bind it where browsers cannot reach).
 */
import { isAlwaysAnswered, plainHostName } from '../config/allowed-hosts.js';
import { echoText } from './echo-text.js';
import type { ProblemInit } from './problem.js';

/** the name of a `Host` value: no port (an IPv6 address keeps its brackets), lower case, no final dot */
function nameOf(host: string): string {
  const value = host.trim();
  // two Host headers, joined: no name (`[::1], evil.example` began like an address)
  if (value.includes(',')) return value.toLowerCase();
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    return (end < 0 ? value : value.slice(0, end + 1)).toLowerCase();
  }
  const colon = value.lastIndexOf(':');
  return plainHostName(colon < 0 ? value : value.slice(0, colon));
}

/** the host of an absolute-form target (`http://name:port/…`), or undefined for a path */
function targetName(target: string): string | undefined {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return undefined;
  try {
    return nameOf(new URL(target).host);
  } catch {
    return undefined;
  }
}

function listed(name: string, allowed: readonly string[]): boolean {
  // two Host headers joined: no name (`evil.example, api.example.com` ends like a `*.example.com`)
  if (name.includes(',')) return false;
  for (const entry of allowed) {
    if (entry.startsWith('*.') ? name.endsWith(entry.slice(1)) : name === entry) return true;
  }
  return false;
}

/** the list empty or `*` alone (the default): no request is refused for its host */
export function answersEveryHost(allowed: readonly string[]): boolean {
  return allowed.length === 0 || allowed[0] === '*';
}

/**
 * The 421 for a request with this `Host` and request target (a path, or an absolute URL as
 * @hono/node-server's `c.req.url` is), or undefined when it may be answered
 */
export function hostRefusal(
  host: string | undefined,
  allowed: readonly string[],
  target?: string,
): ProblemInit | undefined {
  if (answersEveryHost(allowed)) return undefined;
  const fromHost = host === undefined ? '' : nameOf(host);
  const fromTarget = target === undefined ? undefined : targetName(target);
  for (const name of [fromHost, fromTarget]) {
    if (name !== undefined && name !== '' && !isAlwaysAnswered(name) && !listed(name, allowed))
      return refusal(name);
  }
  return undefined;
}

function refusal(name: string): ProblemInit {
  return {
    status: 421,
    code: 'host_not_allowed',
    title: 'Misdirected Request',
    detail: `this API does not answer to the host "${echoText(name)}": it is not in http/allowed_hosts`,
  };
}
