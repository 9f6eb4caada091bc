/**
 * What Node's HTTP server answered on its own, or resolved before Hono saw it, is answered as
 * problem+json by an API instance (src/entry/raw-request-guard.ts): a path with dot-segments
 * (an outside check reached `/metrics` through `/x/%2e%2e/metrics`, past a frontend rule on
 * `path_beg /metrics`) or percent-encoded letters (`/%6detrics`), a request target that is no
 * path (`OPTIONS *`) or a Host no URL can be built with (bare 400s) or that is no host name (one in Unicode passed and
 * carried a path of its own), an HTTP/1.1 request without Host (a bare 400), an unmet `Expect` (a bare
 * 417) and `CONNECT` (the connection closed without a word).
 *
 * The entry runs from source with its dependencies at a closed port (helpers/start-entry.ts):
 * these answers come before any dependency is asked, and the local stack is left alone.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { waitFor } from './helpers/wait-for.js';

let port = 0;

beforeAll(async () => {
  port = await freePort('127.0.0.1');
  const api = startEntry('src/entry/node.ts', {
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
  });
  await waitFor(
    async () => {
      if (api.child.exitCode !== null) throw new Error(`exited ${api.child.exitCode}: ${api.stderr()}`);
      return (await fetch(`http://127.0.0.1:${port}/health`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the instance answering /health' },
  );
}, 40_000);
afterAll(stopStartedEntries);

/**
 * The answer to `request` sent as bytes on a new connection: the first answer once its body
 * (Content-Length) is in, or with `untilClose` everything until the server closes the connection.
 */
function exchange(
  request: string,
  { untilClose = false } = {},
): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const parsed = () => {
      const at = data.indexOf('\r\n\r\n');
      const head = at < 0 ? data : data.slice(0, at);
      return { head, body: at < 0 ? '' : data.slice(at + 4) };
    };
    const settle = () => {
      const { head, body } = parsed();
      resolve({ status: Number(head.split(' ')[1]), headers: head, body });
    };
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.on('data', (d) => {
      data += String(d);
      const { head, body } = parsed();
      const length = /\r\ncontent-length: (\d+)/i.exec(head)?.[1];
      if (!untilClose && length !== undefined && Buffer.byteLength(body) >= Number(length)) {
        settle();
        socket.destroy();
      }
    });
    socket.on('error', reject);
    socket.on('close', settle);
    // one byte per character: a Host with bytes over 0x7f is sent as such
    socket.write(Buffer.from(request, 'latin1'));
  });
}

describe('requests Node used to answer bare, or resolve', () => {
  it.each([
    ['GET /x/%2e%2e/metrics HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /v1/books/%2E%2e/%2e%2e/health/config HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /docs/../metrics HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /x\\..\\metrics HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /v1/books HTTP/1.1\r\nX-Tenant-ID: t\r\n\r\n', 400, 'header.Host'],
    ['POST /v1/members HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}', 417, undefined],
    ['CONNECT 127.0.0.1:3316 HTTP/1.1\r\nHost: 127.0.0.1:3316\r\n\r\n', 405, undefined],
    // a percent-encoded letter: Hono routed /%6detrics as /metrics (an outside check)
    ['GET /%6detrics HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /health/%63onfig HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'path'],
    ['GET /v1/%62ooks HTTP/1.1\r\nHost: a\r\nX-Tenant-ID: t\r\n\r\n', 400, 'path'],
    // what @hono/node-server cannot build a URL of: it answered a bare text/plain 400
    ['OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n', 400, 'path'],
    [
      'GET /v1/books HTTP/1.1\r\nHost: x:abc\r\nX-Tenant-ID: t\r\nConnection: close\r\n\r\n',
      400,
      'header.Host',
    ],
    ['GET /health HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
    ['GET /health HTTP/1.1\r\nHost: [::1\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
    ['GET /health HTTP/1.1\r\nHost: x:99999\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
    // a Host whose IDNA form is as long as the header passed @hono/node-server's check, and its
    // path became the URL's: `/metrics` served for `GET /`, past a frontend rule on the path
    ['GET / HTTP/1.1\r\nHost: a\u00c0\u00c7\u00d7/metrics?\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
    [
      'GET / HTTP/1.1\r\nHost: aa\u00e9.a\u00e9\u00fc/health/config?\r\nConnection: close\r\n\r\n',
      400,
      'header.Host',
    ],
    ['GET /health HTTP/1.1\r\nHost: b\u00fccher.example\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
    ['GET /health HTTP/1.1\r\nHost: x/metrics?\r\nConnection: close\r\n\r\n', 400, 'header.Host'],
  ])('%j → %i problem+json', async (request, status, field) => {
    const r = await exchange(request);
    expect(r.status).toBe(status);
    expect(r.headers).toMatch(/\r\nContent-Type: application\/problem\+json/i);
    expect(r.headers).toMatch(/\r\nX-Request-Id: \S+/i);
    expect(r.headers).toMatch(/\r\nX-Content-Type-Options: nosniff/i);
    expect(r.headers).toMatch(/\r\nX-Served-By: \S+/i);
    const problem = JSON.parse(r.body) as { status: number; errors?: { field: string }[] };
    expect(problem.status).toBe(status);
    if (field) expect(problem.errors?.map((e) => e.field)).toEqual([field]);
  });

  it('leaves alone what is fine: HTTP/1.0 without Host, dots in a query or inside a segment', async () => {
    expect((await exchange('GET /health HTTP/1.0\r\n\r\n')).status).toBe(200);
    expect(
      (await exchange('GET /health?x=../y HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status,
    ).toBe(200);
    // a segment with dots in it is a name like any other: no such route
    expect((await exchange('GET /x/a..b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status).toBe(404);
    // escapes in the query, of reserved characters in the path, a host with a port, IPv6
    for (const request of [
      'GET /health?x=%41%7e HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: API.example:80\r\nConnection: close\r\n\r\n',
      'GET /health HTTP/1.1\r\nHost: localhost:\r\nConnection: close\r\n\r\n',
      // absolute-form, its scheme in capitals (before, 400: @hono/node-server takes only http://)
      'GET HTTP://LOCALHOST/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      'GET http://localhost/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
    ])
      expect((await exchange(request)).status, request).toBe(200);
    expect((await exchange('GET /x%2Fy HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).status).toBe(404);
  });
});

describe('OPTIONS', () => {
  it('of a known path is 204 with Allow and no body, and the connection serves the next request', async () => {
    // before: 405 method_not_allowed for every path
    const r = await exchange(
      'OPTIONS /v1/books HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      { untilClose: true },
    );
    expect(r.status).toBe(204);
    expect(r.headers).toMatch(/\r\nAllow: GET, HEAD, OPTIONS, POST(\r\n|$)/i);
    expect(r.headers).toMatch(/\r\nX-Request-Id: \S+/i);
    // nothing between the 204's head and the next answer's status line
    expect(r.body).toMatch(/^HTTP\/1\.1 200 /);
    const unknown = await exchange('OPTIONS /v1/nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect(unknown.status).toBe(404);
  });
});

/** the status of the answer to a POST of `size` bytes to `path`, its whole body written first */
function postBody(path: string, size: number): Promise<number | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer within 10 s')));
    socket.on('data', (d) => {
      data += String(d);
    });
    socket.on('error', (error) => resolve(data ? Number(data.split(' ')[1]) : `${error.message}`));
    socket.on('close', () => resolve(data ? Number(data.split(' ')[1]) : 'closed without an answer'));
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(size, 0x61));
    socket.end();
  });
}

describe('a refused request with a body', () => {
  it('gets its answer while the body still comes in: none is lost to a reset', async () => {
    // the guard closed the connection at once; the body still arriving made the kernel reset it,
    // and the reset could destroy the 400 before the client read it
    const seen: (number | string)[] = [];
    for (let i = 0; i < 20; i++) seen.push(await postBody('/x/%2e%2e/v1/members', 1_000_000));
    expect(seen).toEqual(seen.map(() => 400));
  });

  it('keeps the connection: the next request on it is served', async () => {
    const r = await exchange(
      'POST /x/../v1/members HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      { untilClose: true },
    );
    expect(r.status).toBe(400);
    expect(r.body).toContain('HTTP/1.1 200');
  });
});
