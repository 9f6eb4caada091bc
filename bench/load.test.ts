/**
 * The bench's measuring instruments against a local node:http server: nearest-rank percentiles,
 * the HTTP/1.1 answer framing of the paced generator, and its open-loop contract (a server stall
 * is charged to every request that fell due during it, not hidden as a pause in sending).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closedLoop, type PacedSource, paced, percentile, responseBody, responseLength } from './load.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  server = createServer(handler);
  return new Promise((resolve) =>
    server!.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server!.address() as AddressInfo).port}`),
    ),
  );
}

describe('percentile (nearest rank)', () => {
  it('picks the smallest value with at least q of the samples at or below it', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 0.5)).toBe(50);
    expect(percentile(v, 0.99)).toBe(99);
    expect(percentile(v, 1)).toBe(100);
    expect(percentile([7], 0.99)).toBe(7);
    expect(percentile([], 0.5)).toBe(0);
  });
});

describe('responseLength', () => {
  it('frames Content-Length, chunked and body-less answers, and waits for incomplete ones', () => {
    const cl = Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    expect(responseLength(cl)).toBe(cl.length);
    expect(responseLength(Buffer.concat([cl, Buffer.from('HTTP/1.1 200')]))).toBe(cl.length);
    expect(responseLength(cl.subarray(0, cl.length - 1))).toBe(0);
    const chunked = Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
    expect(responseLength(chunked)).toBe(chunked.length);
    expect(responseLength(chunked.subarray(0, chunked.length - 2))).toBe(0);
    const empty = Buffer.from('HTTP/1.1 204 No Content\r\nDate: x\r\n\r\n');
    expect(responseLength(empty)).toBe(empty.length);
    expect(responseLength(Buffer.from('HTTP/1.1 200 OK\r\nContent-Le'))).toBe(0);
  });
});

describe('responseBody', () => {
  it('returns the body of a Content-Length or a chunked answer', () => {
    const plain = Buffer.from('HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{"id":"a"}');
    expect(responseBody(plain.subarray(0, responseLength(plain)))).toBe('{"id":"a"');
    const chunked = Buffer.from(
      'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n{"id":\r\n5\r\n"ab"}\r\n0\r\n\r\n',
    );
    expect(responseBody(chunked)).toBe('{"id":"ab"}');
    expect(responseBody(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'))).toBe('');
  });
});

describe('paced (open loop)', () => {
  it('charges a server stall to every request due during it', async () => {
    // answers at once, except that everything arriving in a 300 ms window is held to its end
    const t0 = Date.now();
    const base = await serve((_req, res) => {
      const at = Date.now() - t0;
      const hold = at >= 500 && at < 800 ? 800 - at : 0;
      setTimeout(() => res.end('{"ok":true}'), hold);
    });
    const samples: Array<[number, number]> = [];
    const r = await paced(base, { path: '/' }, { rate: 200, seconds: 1.5, sockets: 8, samples });
    expect(r.errors).toBe(0);
    // one sample per answer, [due after the start, latency]: the slow ones fell due in the stall
    expect(samples).toHaveLength(r.requests);
    const slow = samples.filter(([, latency]) => latency > 100).map(([due]) => due);
    expect(slow.length).toBeGreaterThan(20);
    expect(Math.min(...slow)).toBeGreaterThan(400);
    expect(Math.max(...slow)).toBeLessThan(900);
    expect(r.requests).toBeGreaterThanOrEqual(290);
    // ~20 % of the requests fell due in the stall: the p95 sees it, the median does not
    expect(r.p95).toBeGreaterThan(100);
    expect(r.p50).toBeLessThan(50);
    expect(r.generatorLag).toBeDefined();
  });

  it('asks a PacedSource for each request and hands it the answer it got', async () => {
    // a toy lending desk: POST /borrow answers 201 with a new id (chunked), POST /return/<id> 200
    // once per id, 409 for an id it never gave out or got back already
    let issued = 0;
    const out = new Set<string>();
    const seen: string[] = [];
    const base = await serve((req, res) => {
      seen.push(req.url!);
      if (req.url === '/borrow') {
        const id = `L${++issued}`;
        out.add(id);
        res.statusCode = 201;
        res.write('{"id":');
        res.end(`"${id}"}`);
        return;
      }
      const id = req.url!.slice('/return/'.length);
      res.statusCode = out.delete(id) ? 200 : 409;
      res.end('{}');
    });
    const toReturn: string[] = [];
    const answers: number[] = [];
    const source: PacedSource = {
      next: () => {
        const id = toReturn.shift();
        if (id) return { req: { method: 'POST', path: `/return/${id}` }, answered: (s) => answers.push(s) };
        return {
          req: { method: 'POST', path: '/borrow', body: '{}' },
          answered: (status, body) => {
            answers.push(status);
            toReturn.push((JSON.parse(body) as { id: string }).id);
          },
        };
      },
    };
    const r = await paced(base, source, { rate: 200, seconds: 1, sockets: 4 });
    expect(r.errors).toBe(0);
    expect(answers).toHaveLength(r.requests);
    const returns = seen.filter((u) => u.startsWith('/return/')).length;
    // every return named a loan borrowed before; at most the last few are still out
    expect(returns).toBeGreaterThan(80);
    expect(issued - returns).toBe(out.size);
    expect(out.size).toBeLessThanOrEqual(4);
    expect(r.statusCodes).toEqual({ 201: issued, 200: returns });
  });

  it('counts non-2xx answers as errors', async () => {
    const base = await serve((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const r = await paced(base, { path: '/' }, { rate: 100, seconds: 0.5, sockets: 2 });
    expect(r.non2xx).toBe(r.requests);
    expect(r.errors).toBeGreaterThan(0);
  });
});

describe('closedLoop', () => {
  it('runs a two-step sequence with per-client context and counts every answer', async () => {
    const seen: string[] = [];
    const base = await serve((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('Content-Type', 'application/json');
      res.end(req.url === '/first' ? '{"id":"abc"}' : '{}');
    });
    const r = await closedLoop(
      base,
      [
        {
          build: () => ({ method: 'POST', path: '/first', body: '{}' }),
          onResponse: (_status, body, ctx) => {
            ctx.id = (JSON.parse(body) as { id: string }).id;
          },
        },
        { build: (ctx) => ({ path: `/second/${String(ctx.id)}` }) },
      ],
      { connections: 2, seconds: 1 },
    );
    expect(r.errors).toBe(0);
    expect(r.requests).toBeGreaterThan(10);
    expect(seen).toContain('POST /first');
    expect(seen).toContain('GET /second/abc');
  });
});
