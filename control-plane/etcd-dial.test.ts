import { createServer as createH2Server } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { dialEtcd, etcdFailureReason, etcdRefusal } from './etcd-dial.js';

const servers: { close(): unknown }[] = [];
const sockets = new Set<Socket>();
afterAll(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

function listen(server: Server | ReturnType<typeof createH2Server>): Promise<string> {
  servers.push(server);
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve(`http://127.0.0.1:${(server.address() as { port: number }).port}`),
    ),
  );
}

/** takes TCP connections and never says a word: a frozen or black-holed etcd */
const silent = () => listen(createServer((s) => sockets.add(s)));
const http2 = () => listen(createH2Server());
async function closed(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await new Promise((r) => server.close(r));
  return url;
}

describe('dialEtcd', () => {
  it('resolves undefined when the server answers HTTP/2', async () => {
    expect(await dialEtcd([await http2()], 1000)).toBeUndefined();
  });

  it('names a refused connection at once', async () => {
    const t0 = Date.now();
    expect(await dialEtcd([await closed()], 1000)).toBe('connection refused');
    expect(Date.now() - t0).toBeLessThan(500);
  });

  it('gives up on a server that accepts but never answers after its timeout', async () => {
    const t0 = Date.now();
    expect(await dialEtcd([await silent()], 300)).toBe('no answer within 300 ms');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('succeeds as soon as one endpoint answers, without waiting for a silent one', async () => {
    const t0 = Date.now();
    expect(await dialEtcd([await silent(), await http2()], 2000)).toBeUndefined();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('names each endpoint when their reasons differ', async () => {
    const [a, b] = [await closed(), await silent()];
    expect(await dialEtcd([a, b], 200)).toBe(`${a} connection refused; ${b} no answer within 200 ms`);
  });
});

describe('etcdFailureReason', () => {
  it('turns a gRPC deadline into "no answer within <timeout> ms", without gRPC diagnostics', () => {
    const error = new GRPCDeadlineExceededError(
      '4 DEADLINE_EXCEEDED: Deadline exceeded after 3.013s,name resolution: 0.011s,metadata filters: 0.001s,time to current attempt start: 0.001s,Waiting for LB pick',
    );
    expect(etcdFailureReason(error, 3000)).toBe('no answer within 3000 ms');
  });

  it('keeps the socket cause of an unavailable etcd, in words', () => {
    const error = new GRPCUnavailableError(
      '14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1. Resolution note: ',
    );
    expect(etcdFailureReason(error, 3000)).toBe('connection refused');
    expect(etcdFailureReason(Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' }), 1)).toBe(
      'connection reset',
    );
  });

  it('drops the gRPC status prefix of anything else', () => {
    expect(etcdFailureReason(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'), 3000)).toBe(
      'Connection dropped',
    );
    expect(etcdFailureReason(new Error(''), 3000)).toBe('connection failed');
  });
});

describe('etcdRefusal', () => {
  it('names a request etcd refused as too large as a user error, and nothing else', () => {
    // what etcd3 1.1 throws for an apply over --max-request-bytes
    const tooLarge = new Error('etcdserver: request is too large');
    expect(etcdRefusal(tooLarge)).toMatch(/^etcd refused the request as larger than its --max-request-bytes/);
    expect(
      etcdRefusal(new GRPCUnavailableError('14 UNAVAILABLE: No connection established')),
    ).toBeUndefined();
    expect(etcdRefusal(new Error('connect ECONNREFUSED 127.0.0.1:2379'))).toBeUndefined();
  });
});
