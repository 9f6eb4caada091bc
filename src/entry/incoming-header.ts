/**
 * One request header read straight off the Node request, answering what the Fetch API's
 * `Headers.get(name)` answers, without building that Headers object. @hono/node-server builds
 * undici's Headers from every raw header the first time anything asks `c.req.header()`; under a
 * cached GET that was about 3 % of an instance's on-CPU samples (bench/ROUNDS.md). createApp
 * reads headers through `Services.requestHeader`; other runtimes leave it out and use
 * `c.req.header()`.
 *
 * Contract of `incomingHeader(incoming, name)`:
 * - `name` is matched case-insensitively against `incoming.rawHeaders`;
 * - no such header → undefined; one → its value; several → their values joined with ", " in the
 *   order received, as `Headers.get` does (so a doubled `Authorization` stays invalid instead of
 *   silently using the first, which Node's `incoming.headers` would do);
 * - values are as Node's parser left them: leading and trailing blanks already stripped.
 */
import type { IncomingMessage } from 'node:http';

export function incomingHeader(incoming: IncomingMessage, name: string): string | undefined {
  const raw = incoming.rawHeaders;
  const wanted = name.toLowerCase();
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const key = raw[i]!;
    if (key.length !== wanted.length || key.toLowerCase() !== wanted) continue;
    value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
  }
  return value;
}
