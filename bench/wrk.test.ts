/**
 * The wrk adapter: its summary line read into a LoadResult, a real `wrk` (Debian package)
 * against a local node:http server whose answers alternate between 200 and 503, and the borrow +
 * return script against a local loan ledger that checks every return it is sent.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type LendingTenant, lendingScript, parseWrk, wrk, wrkLending } from './wrk.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe('parseWrk', () => {
  it('reads requests, errors and the latency percentiles (µs → ms) of the hook line', () => {
    const out = [
      'Running 2s test @ http://127.0.0.1:8080/health',
      'SHARDGATE-WRK 20000 2000000 10 1 2 3 4 1500 4000 9000 25000',
    ].join('\n');
    const r = parseWrk(out, 42);
    expect(r).toMatchObject({
      seconds: 2,
      requests: 20000,
      rps: 10000,
      p50: 1.5,
      p95: 4,
      p99: 9,
      max: 25,
      non2xx: 10,
      socketErrors: 10,
      errors: 20,
      statusCodes: { '2xx/3xx': 19990, 'not 2xx/3xx': 10 },
      generatorCpuPercent: 42,
    });
  });

  it('refuses output without the hook line', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toThrow('no summary line');
  });
});

describe('wrk', () => {
  it('runs a closed loop with the request headers and counts non-2xx answers', async () => {
    let n = 0;
    const tenants = new Set<string>();
    server = createServer((req, res) => {
      tenants.add(String(req.headers['x-tenant-id']));
      res.statusCode = n++ % 2 === 0 ? 200 : 503;
      res.end('{}');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await wrk(
      base,
      { path: '/x', headers: { 'X-Tenant-ID': 't1' } },
      { connections: 4, seconds: 1 },
    );
    expect(r.requests).toBeGreaterThan(100);
    expect(r.non2xx).toBeGreaterThan(r.requests * 0.4);
    expect(r.non2xx).toBeLessThan(r.requests * 0.6);
    expect(r.p50).toBeGreaterThan(0);
    expect(r.p99).toBeGreaterThanOrEqual(r.p50);
    expect(r.generatorCpuPercent).toBeGreaterThan(0);
    expect([...tenants]).toEqual(['t1']);
  });

  it('refuses a request wrk cannot send as given', async () => {
    await expect(wrk('http://127.0.0.1:1', { method: 'POST', path: '/', body: '{}' })).rejects.toThrow(
      'GET requests without a body only',
    );
  });
});

describe('wrkLending', () => {
  const lenders: LendingTenant[] = [
    {
      id: 'bench-l0',
      books: ['book-0'],
      members: [
        { id: 'm-0a', token: 'h.p0a.s' },
        { id: 'm-0b', token: 'h.p0b.s' },
      ],
    },
    { id: 'bench-l1', books: ['book-1'], members: [{ id: 'm-1a', token: 'h.p1a.s' }] },
  ];

  it('borrows as a member of a lending tenant and returns each loan once, with its tenant and token', async () => {
    // the ledger answers as the API does: 201 and the loan for a borrow, 200 for a return of an
    // open loan by its tenant and borrower, 404 for anything else (counted by wrk as an error)
    const tokens = new Map(
      lenders.flatMap((l) => l.members.map((m) => [`Bearer ${m.token}` as string, { l, m }] as const)),
    );
    const open = new Map<string, { tenant: string; token: string }>();
    let borrows = 0;
    let returns = 0;
    let refused = 0;
    let next = 0;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const tenant = String(req.headers['x-tenant-id']);
        const token = String(req.headers.authorization);
        const who = tokens.get(token);
        const ret = /^\/v1\/loans\/([\w-]+)\/return$/.exec(req.url ?? '');
        if (req.method === 'POST' && req.url === '/v1/loans' && who && who.l.id === tenant) {
          const { bookId } = JSON.parse(body) as { bookId: string };
          if (bookId === who.l.books[0]) {
            const id = `loan-${next++}`;
            open.set(id, { tenant, token });
            borrows++;
            res.writeHead(201, { 'Content-Type': 'application/json' });
            return res.end(JSON.stringify({ id, bookId, memberId: who.m.id, status: 'active' }));
          }
        }
        const loan = ret ? open.get(ret[1]!) : undefined;
        if (req.method === 'POST' && loan && loan.tenant === tenant && loan.token === token) {
          open.delete(ret![1]!);
          returns++;
          res.writeHead(200, { 'Content-Type': 'application/json' });
          return res.end(JSON.stringify({ id: ret![1], status: 'returned' }));
        }
        refused++;
        res.writeHead(404).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await wrkLending(base, lenders, { connections: 4, seconds: 1 });
    expect(refused).toBe(0);
    expect(r.errors).toBe(0);
    expect(borrows).toBeGreaterThan(50);
    // every connection alternates, so at most one loan per connection is still out at the end
    expect(borrows - returns).toBeLessThanOrEqual(4);
    expect(open.size).toBe(borrows - returns);
    expect(r.requests).toBeGreaterThanOrEqual(borrows + returns - 4);
  });

  it('refuses values it cannot put into a Lua string, and tenants with nothing to lend', () => {
    expect(() => lendingScript([{ ...lenders[0]!, books: ['x" .. os.exit() .. "'] }])).toThrow('book id');
    expect(() => lendingScript([{ ...lenders[0]!, members: [] }])).toThrow('a book and a member each');
    expect(() => lendingScript([])).toThrow('a book and a member each');
  });
});
