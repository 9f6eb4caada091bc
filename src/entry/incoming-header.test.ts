import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incomingHeader } from './incoming-header.js';

// a real node:http server hands each request to `seen`; requests are written raw, so header
// names keep their case and duplicates reach Node as sent
let server: Server;
let port = 0;
let seen: (req: IncomingMessage) => void = () => {};

beforeAll(async () => {
  server = createServer((req, res) => {
    seen(req);
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function receive(headerLines: string[]): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    seen = resolve;
    const socket = connect(port, '127.0.0.1', () => {
      socket.end(
        `GET / HTTP/1.1\r\nHost: x\r\n${headerLines.map((l) => `${l}\r\n`).join('')}Connection: close\r\n\r\n`,
      );
    });
    socket.on('error', reject);
    socket.resume();
  });
}

describe('incomingHeader', () => {
  it('answers what the Fetch API Headers.get answers, for any case, one or several values, or none', async () => {
    const req = await receive([
      'x-tenant-id: acme',
      'AUTHORIZATION: Bearer a.b.c',
      'X-Dup: one',
      'x-dup: two',
      'Authorization: Bearer d.e.f',
      'X-Padded:    spaced value   ',
    ]);
    // the reference: a Fetch Headers built from every raw header, as @hono/node-server builds it
    const fetchHeaders = new Headers();
    for (let i = 0; i < req.rawHeaders.length; i += 2)
      fetchHeaders.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
    for (const name of [
      'X-Tenant-ID',
      'x-tenant-id',
      'authorization',
      'X-DUP',
      'x-padded',
      'host',
      'absent',
      'x-tenant',
    ]) {
      expect(incomingHeader(req, name), name).toBe(fetchHeaders.get(name) ?? undefined);
    }
    expect(incomingHeader(req, 'X-Tenant-Id')).toBe('acme');
    // a doubled Authorization is joined, so it is no token at all (Node's req.headers keeps the first)
    expect(incomingHeader(req, 'Authorization')).toBe('Bearer a.b.c, Bearer d.e.f');
    expect(req.headers.authorization).toBe('Bearer a.b.c');
    expect(incomingHeader(req, 'x-dup')).toBe('one, two');
    expect(incomingHeader(req, 'X-Padded')).toBe('spaced value');
    expect(incomingHeader(req, 'absent')).toBeUndefined();
  });
});
