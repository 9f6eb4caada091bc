import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { installClientErrorHandler } from './client-error.js';

const { logger, lines } = recordingLogger();

let server: Server;
let port = 0;
const metrics = createPromMetrics();

beforeAll(async () => {
  server = createServer(
    // a short request timeout, checked often, so the 408 case takes well under a second
    { requestTimeout: 300, headersTimeout: 300, connectionsCheckingInterval: 50 },
    (req, res) => {
      if (req.url === '/stream') {
        // headers out, body never finished: a response in flight on this connection
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('started');
        return;
      }
      res.end('ok');
    },
  );
  installClientErrorHandler(server, { logger, metrics, newId: () => 'rid-test' });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});

/**
 * raw bytes in, everything the server sent until it closed the connection out; `afterFirstData`
 * is written once the server's first bytes arrived
 */
function raw(payload: string, afterFirstData?: string): Promise<{ text: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1', () => socket.write(payload));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      if (text === '' && afterFirstData) socket.write(afterFirstData);
      text += d;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, ms: Date.now() - t0 }));
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after 5 s; got ${JSON.stringify(text.slice(0, 200))}`));
    }, 5000).unref();
  });
}

function parse(text: string) {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

const SECRET = 'Bearer secret-token-value';

describe('installClientErrorHandler', () => {
  it.each([
    {
      name: 'headers over 16 KB',
      payload: `GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ${SECRET}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      status: 431,
      code: 'headers_too_large',
      errorCode: 'HPE_HEADER_OVERFLOW',
    },
    {
      name: 'a request line that is not HTTP',
      payload: `NOT HTTP AT ALL\r\nAuthorization: ${SECRET}\r\n\r\n`,
      status: 400,
      code: 'bad_request',
    },
    {
      name: 'an invalid header',
      payload: `GET / HTTP/1.1\r\nHost: x\r\nBad Header: ${SECRET}\r\n\r\n`,
      status: 400,
      code: 'bad_request',
    },
    {
      name: 'headers never completed (request timeout)',
      payload: `GET / HTTP/1.1\r\nHost: x\r\nAuthorization: ${SECRET}\r\n`,
      status: 408,
      code: 'request_timeout',
      errorCode: 'ERR_HTTP_REQUEST_TIMEOUT',
    },
  ])('answers $name with $status problem+json and closes', async ({ payload, status, code, errorCode }) => {
    lines.length = 0;
    const { text } = await raw(payload);
    const res = parse(text);
    expect(res.status, text.slice(0, 200)).toBe(status);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers.connection).toBe('close');
    expect(res.headers['x-request-id']).toBe('rid-test');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.body));
    expect(JSON.parse(res.body)).toEqual({
      type: `https://shardgate.dev/problems/${code}`,
      title: expect.any(String),
      status,
      detail: expect.any(String),
      code,
      requestId: 'rid-test',
      // a 400 names its field like every other 400: the request itself
      ...(status === 400 ? { errors: [{ field: 'request', message: expect.any(String) }] } : {}),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.level).toBe('debug');
    expect(lines[0]!.obj).toEqual({
      code: errorCode ?? expect.stringMatching(/^HPE_/),
      status,
      requestId: 'rid-test',
    });
    expect(JSON.stringify(lines)).not.toContain('secret-token-value');
  });

  it('writes nothing into a response already on the wire, only closes the connection', async () => {
    lines.length = 0;
    // a pipelined second request that does not parse, while the first one's answer is streaming
    const { text } = await raw('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n', 'NOT HTTP AT ALL\r\n\r\n');
    expect(parse(text).status).toBe(200);
    expect(text).toContain('started');
    expect(text).not.toContain('problem+json');
    expect(lines.map((l) => l.level)).toEqual(['debug']);
  });

  it('counts an unknown method (FOO) as route="unmatched", method="unknown": the label set stays bounded', async () => {
    const count = async () => {
      const { body } = await metrics.render();
      const line = body
        .split('\n')
        .find((l) =>
          l.startsWith(
            'shardgate_http_request_duration_seconds_count{route="unmatched",method="unknown",status="400"}',
          ),
        );
      return line === undefined ? 0 : Number(line.split(' ').pop());
    };
    const before = await count();
    lines.length = 0;
    for (let i = 0; i < 10; i++) {
      const { text } = await raw(`FOO${i} /x${i} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(parse(text).status).toBe(400);
    }
    expect(await count()).toBe(before + 10);
    expect(lines.map((l) => l.level)).toEqual(Array(10).fill('debug'));
    expect((await metrics.render()).body).not.toMatch(/FOO|x0/);
  });

  it('leaves the server serving after a client error', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('ok');
  });
});
