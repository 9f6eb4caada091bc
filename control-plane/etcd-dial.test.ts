import { createServer as createH2Server } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
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

/**
 * The dial's own timer is faked (network I/O is real): a dial that settles while no timer time
 * passes did not wait for its timeout, whatever the box's speed.
 */
function fakeDialTimer(): void {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
}
afterEach(() => {
  vi.useRealTimers();
});

/** `promise` settled or not after the network had `rounds` chances to answer (no timer time passes) */
async function settledAfterIo(promise: Promise<unknown>, rounds = 50): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < rounds && !settled; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

describe('dialEtcd', () => {
  it('resolves undefined when the server answers HTTP/2', async () => {
    expect(await dialEtcd([await http2()], 1000)).toBeUndefined();
  });

  it('names a refused connection at once', async () => {
    const url = await closed();
    fakeDialTimer();
    // settles with no timer time passed: it did not wait for its 1000 ms
    expect(await dialEtcd([url], 1000)).toBe('connection refused');
  });

  it('gives up on a server that accepts but never answers after its timeout', async () => {
    const url = await silent();
    fakeDialTimer();
    const dial = dialEtcd([url], 300);
    // connected, no answer: still waiting 1 ms before its timeout, given up at it
    vi.advanceTimersByTime(299);
    expect(await settledAfterIo(dial)).toBe(false);
    vi.advanceTimersByTime(1);
    expect(await dial).toBe('no answer within 300 ms');
  });

  it('succeeds as soon as one endpoint answers, without waiting for a silent one', async () => {
    const endpoints = [await silent(), await http2()];
    fakeDialTimer();
    // settles with no timer time passed: it did not wait for the silent one's 2000 ms
    expect(await dialEtcd(endpoints, 2000)).toBeUndefined();
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
