import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoContentResponse } from './no-content-response.js';

const app = new Hono();
app.delete('/thing', (c) => c.body(null, 204));
app.get('/thing', (c) => c.json({ ok: true }));
app.get('/text', (c) => c.body('plain'));

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer({ ServerResponse: NoContentResponse }, getRequestListener(app.fetch));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('NoContentResponse', () => {
  it('sends a 204 without the Content-Type @hono/node-server adds', async () => {
    const res = await fetch(`${base}/thing`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(res.headers.get('content-type')).toBeNull();
  });

  it('leaves every other answer as it was', async () => {
    const json = await fetch(`${base}/thing`);
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual({ ok: true });
    // the default @hono/node-server gives a body without a type
    expect((await fetch(`${base}/text`)).headers.get('content-type')).toBe('text/plain; charset=UTF-8');
  });

  it('is what makes the difference: a plain ServerResponse adds the type to a 204', async () => {
    const plain = createServer(getRequestListener(app.fetch));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const port = (plain.address() as AddressInfo).port;
      const res = await fetch(`http://127.0.0.1:${port}/thing`, { method: 'DELETE' });
      expect(res.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    } finally {
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });
});
