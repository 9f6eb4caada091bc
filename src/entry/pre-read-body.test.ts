import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preReadBodies, preReadBodyOf } from './pre-read-body.js';

const LIMIT = 64;
let server: Server;
let port = 0;

beforeAll(async () => {
  // answers what the listener was handed, and whether the request stream was at its end
  server = createServer(
    preReadBodies((req, res) => {
      res.setHeader('content-type', 'application/json');
      const raw = (req as { rawBody?: Buffer }).rawBody;
      res.end(
        JSON.stringify({
          body: preReadBodyOf(req) ?? null,
          ended: req.readableEnded,
          raw: raw?.toString('hex'),
        }),
      );
    }, LIMIT),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/** one request; `chunks` are written one by one (chunked when no Content-Length is given) */
function send(
  method: string,
  chunks: (string | Buffer)[],
  headers: Record<string, string | number> = {},
): Promise<{
  status: number;
  json: { body: unknown; ended: boolean; raw?: string };
  connection: string | undefined;
}> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: '/', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(text), connection: res.headers.connection }),
      );
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('preReadBodies', () => {
  it('hands a POST on with its whole body as text, the stream at its end', async () => {
    const body = JSON.stringify({ bookId: 'b-1' });
    const r = await send('POST', [body], { 'content-length': Buffer.byteLength(body) });
    // the bytes stay as `rawBody` too, for @hono/node-server should anything ask for the Fetch body
    expect(r.json).toEqual({ body: { text: body }, ended: true, raw: Buffer.from(body).toString('hex') });
    expect(r.connection).toBe('keep-alive');
  });

  it('joins a chunked body, decodes UTF-8 split across chunks and drops a leading BOM', async () => {
    const bytes = Buffer.from('\uFEFF{"name":"Zoë"}', 'utf8');
    const split = bytes.indexOf(0xc3) + 1; // inside the two bytes of ë
    const r = await send('POST', [bytes.subarray(0, split), bytes.subarray(split)]);
    expect(r.json.body).toEqual({ text: '{"name":"Zoë"}' });
  });

  it('marks a body whose bytes are not UTF-8 (a lone 0xFF, an encoded surrogate) instead of replacing them', async () => {
    for (const bad of [Buffer.from([0x7b, 0xff, 0x7d]), Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])]) {
      const r = await send('POST', [bad], { 'content-length': bad.length });
      expect(r.json.body).toEqual({ notUtf8: true });
    }
  });

  it('gives an empty body as empty text', async () => {
    const r = await send('POST', [], { 'content-length': 0 });
    expect(r.json.body).toEqual({ text: '' });
  });

  it('marks a body too large by its Content-Length at once, and closes the connection after the answer', async () => {
    const r = await send('PUT', ['x'.repeat(LIMIT + 1)], { 'content-length': LIMIT + 1 });
    expect(r.json.body).toEqual({ tooLarge: true });
    expect(r.connection).toBe('close');
  });

  it('marks a chunked body too large once the bytes received pass the limit', async () => {
    const r = await send('POST', ['x'.repeat(LIMIT), 'y'.repeat(LIMIT)]);
    expect(r.json.body).toEqual({ tooLarge: true });
    expect(r.connection).toBe('close');
  });

  it('keeps exactly `limit` bytes', async () => {
    const r = await send('POST', ['z'.repeat(LIMIT)]);
    expect(r.json.body).toEqual({ text: 'z'.repeat(LIMIT) });
  });

  it('leaves GET and HEAD alone', async () => {
    const r = await send('GET', []);
    expect(r.json.body).toBeNull();
  });
});
