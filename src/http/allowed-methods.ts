/**
 * `allowedMethods(routes)`: the methods an app answers on a path, for a 405 with `Allow` when a
 * request names a known path with a method it has no route for (RFC 9110 §15.5.6). `routes` are
 * Hono's `app.routes` (`{method, path}` with `:param` and `*` patterns); middleware entries
 * (method `ALL`) and the catch-all `/*` do not count. A GET route also answers HEAD, and every
 * known path OPTIONS (RFC 9110 §9.3.7: 204 with the same `Allow`); an unknown path has none.
 */
export type AllowedMethods = (path: string) => string[];

export function allowedMethods(routes: readonly { method: string; path: string }[]): AllowedMethods {
  const patterns = routes
    .filter((r) => r.method !== 'ALL' && r.path !== '/*')
    .map((r) => ({ method: r.method, regex: patternRegex(r.path) }));
  return (path) => {
    const methods = new Set<string>();
    for (const p of patterns) {
      if (!p.regex.test(path)) continue;
      methods.add(p.method);
      if (p.method === 'GET') methods.add('HEAD');
    }
    if (methods.size > 0) methods.add('OPTIONS');
    return [...methods].sort();
  };
}

function patternRegex(path: string): RegExp {
  const body = path
    .split('/')
    .map((part) => {
      if (part === '*') return '.*';
      if (part.startsWith(':')) return '[^/]+';
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  // exact, like the router (strict): `/v1/books/` is no route, so 404, not a 405 naming GET
  return new RegExp(`^${body}$`);
}
