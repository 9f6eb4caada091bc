import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { callerGoneOf } from './caller-gone.js';

let server: Server | undefined;
const clients: Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  const s = server;
  server = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise((r) => s.close(r));
});

/** blocks this thread for `ms` without running the event loop */
function blockFor(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** a server that holds every request unanswered, and a client that sent one; both on loopback */
async function heldRequest(): Promise<{ req: IncomingMessage; client: Socket }> {
  let held!: (req: IncomingMessage) => void;
  const received = new Promise<IncomingMessage>((r) => {
    held = r;
  });
  server = createServer((req) => held(req));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const client = connect(port, '127.0.0.1');
  clients.push(client);
  client.on('error', () => {});
  client.write('POST /v1/loans HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
  return { req: await received, client };
}

describe('callerGoneOf', () => {
  it('is false while the client waits', async () => {
    const { req } = await heldRequest();
    expect(callerGoneOf(req)).toBe(false);
  });

  it('after a stall, is true for a reset connection before Node has read the reset', async () => {
    const { req, client } = await heldRequest();
    const afterStall = () => true;
    // the RST leaves with this call; no turn of the event loop runs before the checks below, so
    // Node has not read the reset: its own flags still say open
    client.resetAndDestroy();
    // on a busy machine the kernel may take a moment to deliver the RST on loopback: wait for it
    // without yielding to the event loop (Atomics.wait blocks this thread), at most 2 s
    const until = Date.now() + 2_000;
    while (!callerGoneOf(req, afterStall) && Date.now() < until) blockFor(5);
    const s = req.socket;
    expect([s.destroyed, s.readableEnded, s.writable]).toEqual([false, false, true]);
    expect(callerGoneOf(req, afterStall)).toBe(true);
    // without a stall the kernel is not asked: the reset counts once Node has read it
    expect(callerGoneOf(req, () => false)).toBe(false);
    await new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
    expect(callerGoneOf(req, () => false)).toBe(true);
  });

  it('is true once the client has closed its side', async () => {
    const { req, client } = await heldRequest();
    client.end();
    await new Promise<void>((r) => req.socket.once('end', () => r()));
    expect(callerGoneOf(req)).toBe(true);
  });

  it('is false for a request without a socket', () => {
    expect(callerGoneOf(undefined)).toBe(false);
  });
});
