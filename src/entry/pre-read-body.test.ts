import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installExpectContinue, preReadBodies, preReadBodyOf } from './pre-read-body.js';

const LIMIT = 64;
/** the bounds of what is read of a refused body after the answer (LINGER_MAX_*), shortened */
const LINGER = { maxBytes: 1000, maxMs: 400 };
let server: Server;
let port = 0;

beforeAll(async () => {
  // answers what the listener was handed, and whether the request stream was at its end
  server = createServer(
    preReadBodies(
      (req, res) => {
        res.setHeader('content-type', 'application/json');
        const raw = (req as { rawBody?: Buffer }).rawBody;
        res.end(
          JSON.stringify({
            body: preReadBodyOf(req) ?? null,
            ended: req.readableEnded,
            raw: raw?.toString('hex'),
          }),
        );
      },
      LIMIT,
      LINGER,
    ),
  );
  installExpectContinue(server, LIMIT);
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

/** a raw connection to the server: what it received so far, and when the server closed it */
function rawConnection() {
  const socket = connect({ host: '127.0.0.1', port });
  let data = '';
  socket.on('data', (d) => {
    data += String(d);
  });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return { socket, received: () => data, closed };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 200) throw new Error('not seen within 2 s');
    await new Promise((r) => setTimeout(r, 10));
  }
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

  it('marks a body too large by its Content-Length at once; its rest is read and dropped, the connection kept', async () => {
    const r = await send('PUT', ['x'.repeat(LIMIT + 1)], { 'content-length': LIMIT + 1 });
    expect(r.json.body).toEqual({ tooLarge: true });
    expect(r.connection).toBe('keep-alive');
  });

  it('marks a chunked body too large once the bytes received pass the limit', async () => {
    const r = await send('POST', ['x'.repeat(LIMIT), 'y'.repeat(LIMIT)]);
    expect(r.json.body).toEqual({ tooLarge: true });
    expect(r.connection).toBe('keep-alive');
  });

  it('answers a body too large before it is all sent, then reads its rest: the same connection serves the next request', async () => {
    const { socket, received, closed } = rawConnection();
    socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMIT + 500}\r\n\r\n`);
    socket.write('x'.repeat(LIMIT + 1));
    // the answer comes while most of the body is still to be sent
    await until(() => received().includes('"tooLarge":true'));
    socket.write('x'.repeat(499));
    socket.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    await closed;
    expect(received().match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(received()).toContain('"body":null');
  });

  it('closes a connection whose refused body goes on past the bounds (bytes, or time)', async () => {
    // more than LINGER.maxBytes declared, and sent: answered, then destroyed once past it
    // (the byte counts tell the byte bound from the time bound: at 500 bytes every 5 ms, the
    // 400 ms of LINGER.maxMs would let tens of KB through, and a slow timer still over 6 KB)
    const declared = rawConnection();
    let isClosed = false;
    void declared.closed.then(() => {
      isClosed = true;
    });
    declared.socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${LINGER.maxBytes * 100}\r\n\r\n`);
    await until(() => declared.received().includes('"tooLarge":true'));
    // under the bound the connection stays open: the rest is read, not cut off at once
    declared.socket.write('x'.repeat(LINGER.maxBytes / 2));
    await new Promise((r) => setTimeout(r, 100));
    expect(isClosed).toBe(false);
    let sent = LINGER.maxBytes / 2;
    const flood = setInterval(() => {
      if (declared.socket.writable) {
        declared.socket.write('x'.repeat(500));
        sent += 500;
      }
    }, 5);
    await declared.closed;
    clearInterval(flood);
    expect(sent).toBeLessThan(LINGER.maxBytes * 6);
    // chunked, sent on and on: destroyed once past LINGER.maxBytes
    const endless = rawConnection();
    endless.socket.write('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = `${(500).toString(16)}\r\n${'y'.repeat(500)}\r\n`;
    let chunked = 0;
    const writer = setInterval(() => {
      if (endless.socket.writable) {
        endless.socket.write(chunk);
        chunked += 500;
      }
    }, 5);
    await endless.closed;
    clearInterval(writer);
    expect(endless.received()).toContain('"tooLarge":true');
    expect(chunked).toBeLessThan(LINGER.maxBytes * 6);
    // a body that stops coming: destroyed after LINGER.maxMs
    const stalled = rawConnection();
    const t0 = Date.now();
    stalled.socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMIT + 100}\r\n\r\n`);
    await stalled.closed;
    expect(stalled.received()).toContain('"tooLarge":true');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(LINGER.maxMs - 50);
  });

  it('sends no 100 Continue for a body declared too large: the answer at once, then the connection closed', async () => {
    const { socket, received, closed } = rawConnection();
    socket.write(
      `POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${LIMIT + 1}\r\n\r\n`,
    );
    await closed;
    expect(received()).not.toContain('100 Continue');
    expect(received()).toContain('"tooLarge":true');
    // within the limit: 100 Continue, then the body is read
    const small = rawConnection();
    small.socket.write(
      'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n',
    );
    await until(() => small.received().includes('100 Continue'));
    small.socket.write('{}');
    await small.closed;
    expect(small.received()).toContain('"text":"{}"');
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
