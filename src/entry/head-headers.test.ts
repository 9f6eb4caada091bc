/**
 * A HEAD answer through the Node adapter carries the GET's headers (`X-Content-Type-Options`,
 * `X-Request-Id`, `X-Served-By`) also for an answer the app's own builders did not make (the
 * Swagger UI page, `c.html` of @hono/swagger-ui): an outside check saw `HEAD /docs` without them,
 * the headers set on such a response after it was made being lost when Hono turns a GET's answer
 * into a HEAD's (`new Response(null, res)`) under @hono/node-server's lightweight Response.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMemoryServices } from '../testing/memory-services.js';

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer(getRequestListener(createApp(createMemoryServices()).fetch));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('HEAD through the Node adapter', () => {
  it.each(['/docs', '/health'])('%s: the headers of its GET', async (path) => {
    const get = await fetch(`${base}${path}`);
    await get.arrayBuffer();
    const head = await fetch(`${base}${path}`, { method: 'HEAD' });
    expect(head.status).toBe(get.status);
    for (const name of ['content-type', 'x-content-type-options', 'x-served-by'])
      expect([name, head.headers.get(name)]).toEqual([name, get.headers.get(name)]);
    expect(head.headers.get('x-request-id')).toMatch(/./);
  });
});
