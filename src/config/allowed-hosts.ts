/**
 * `http/allowed_hosts`: the host names clients reach the API by. A page on another site can point
 * its own name at an instance's address (DNS rebinding): the browser then counts the instance as
 * that page's own site, reads `/health/*` and sends writes as it, with `Host` and `Origin` both the
 * page's name. Listing the names the API is reached by refuses such requests (http/host-check.ts).
 *
 * The value: names separated by commas or blanks (`api.example.com, *.library.example.org`), or the
 * same as a JSON array of strings (what `config apply` writes for a YAML list). A name is a DNS
 * name, or `*.` and a name for every name under it (not that name itself); no scheme, port or
 * path (the port is not compared). Case and a final dot do not matter. IP addresses may be listed
 * but need not be: see below.
 *
 * Empty, the default, or `*` alone: every `Host` is answered, as before the key existed.
 * With a list, these are always answered too: an IP address (`127.0.0.1:8080`, `[::1]`),
 * `localhost`, and a request without `Host` (HTTP/1.0, as HAProxy's health checks send): a browser
 * sends an address or `localhost` only for a page loaded from it, which is no rebinding.
 *
 * Refused, with the reason, while the last good value stays in force: a URL, a port, a path, a
 * character no DNS name has, a name that is not ASCII (with its `xn--` spelling), `*` anywhere but
 * alone or as a leading `*.`, `*` beside names, a duplicate, more than MAX_ALLOWED_HOSTS names or
 * 8,192 characters. A wildcard of one label is taken as written: `*.internal`, `*.localhost` and
 * `*.test` are what private networks use (a review: refusing them made a list that held one fall
 * back to the default, every host), and `*.com` answers every name under `com`, as it says.
 */
import { z } from 'zod';
import { type Listed, parseList } from './list-text.js';

export const ALLOWED_HOSTS_KEY = 'http/allowed_hosts';
/** at most this many names; a site with more uses a wildcard */
export const MAX_ALLOWED_HOSTS = 100;
/** a DNS name as the URL parser writes it (lower case, IDNs as `xn--`), labels of 1–63 */
const DNS_NAME = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
/** an IPv4 address, or an IPv6 one in brackets (as in `Host`) */
const IP_HOST = /^(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/;

/** `name` lower-cased without its final dot */
export function plainHostName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** true for an IP address (IPv6 in brackets) or `localhost`: answered whatever the list */
export function isAlwaysAnswered(name: string): boolean {
  return name === 'localhost' || IP_HOST.test(name);
}

/** why `entry` is no host name to list, or undefined when it is one (lower-cased, no final dot) */
function hostProblem(entry: string): string | undefined {
  const shown = JSON.stringify(entry.slice(0, 80));
  if (entry.includes('://')) return `${shown} is a URL: write the host name alone, as api.example.com`;
  if (/[/?#@]/.test(entry)) return `${shown} is not a host name: no path, query or credentials`;
  const name = plainHostName(entry.startsWith('*.') ? entry.slice(2) : entry);
  if (IP_HOST.test(name) && !entry.startsWith('*.')) return undefined;
  if ((name.match(/:/g) ?? []).length > 1)
    return `${shown} looks like an IPv6 address: addresses are always answered; list names only`;
  if (/:\d*$/.test(name)) return `${shown} has a port: write the name alone (the port is not compared)`;
  if (name.includes('*')) return `${shown}: "*" may only begin a name, as *.example.com`;
  if (/[^\x21-\x7e]/.test(name)) {
    let ascii: string | undefined;
    try {
      ascii = new URL(`http://${name}`).hostname;
    } catch {}
    return ascii && DNS_NAME.test(ascii)
      ? `${shown} is not ASCII: write ${JSON.stringify(entry.startsWith('*.') ? `*.${ascii}` : ascii)}`
      : `${shown} is not a host name: letters, digits, "-", "_" and "."`;
  }
  if (name.length > 253 || !DNS_NAME.test(name))
    return `${shown} is not a host name: labels of letters, digits, "-" and "_" (up to 63 each), separated by "."`;
  return undefined;
}

/** the names of a value (lower case, no final dot), or the first reason it is refused */
export function parseAllowedHosts(text: string): Listed {
  return parseList(text, {
    star: 'answers every host',
    maxItems: MAX_ALLOWED_HOSTS,
    noun: 'names',
    tooManyHint: ' (use *.example.com)',
    problem: hostProblem,
    normalize: plainHostName,
  });
}

export const allowedHostsSchema = z.string().transform((text, ctx): readonly string[] => {
  const r = parseAllowedHosts(text);
  if (r.ok) return r.items;
  ctx.addIssue({ code: 'custom', message: r.reason });
  return z.NEVER;
});
