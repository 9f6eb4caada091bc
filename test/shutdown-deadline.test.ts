/**
 * A SIGTERMed API instance stops in bounded time: a client that opened a POST and never sends the
 * rest of its body is cut off at SHARDGATE_SHUTDOWN_TIMEOUT_MS after the drain, and the process
 * exits 0. Before, `server.close()` waited for that client as long as it liked (41 s in an outside
 * check, until the client gave up). Runs its own instance beside the stack, not behind HAProxy.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { type ExtraInstance, startExtraInstance, stopExtraInstance } from '../bench/extra-instance.js';

let instance: ExtraInstance | undefined;
const sockets: Socket[] = [];
afterAll(async () => {
  for (const s of sockets) s.destroy();
  if (instance) await stopExtraInstance(instance.child);
});

describe('shutdown deadline', () => {
  it('closes a connection whose request body never completes, then exits 0', async () => {
    instance = await startExtraInstance({
      id: 'shutdown-deadline-test',
      nodeArgs: [],
      env: { SHARDGATE_DRAIN_MS: '200', SHARDGATE_SHUTDOWN_TIMEOUT_MS: '1000' },
    });
    const { child, base } = instance;
    const url = new URL(base);
    const slow = connect(Number(url.port), url.hostname);
    sockets.push(slow);
    let closedByServer = false;
    slow.on('close', () => {
      closedByServer = true;
    });
    slow.on('error', () => {});
    await new Promise<void>((resolve) => slow.once('connect', () => resolve()));
    // 5 of the 100 bytes it announces; the rest never comes
    slow.write(
      'POST /v1/members HTTP/1.1\r\nHost: x\r\nX-Tenant-ID: t1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"ema',
    );
    await new Promise((r) => setTimeout(r, 300));

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const sentAt = Date.now();
    child.kill('SIGTERM');
    const code = await Promise.race([
      exited,
      new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000)),
    ]);
    const tookMs = Date.now() - sentAt;

    expect(code).toBe(0);
    // drain 0.2 s + deadline 1 s, with room for a slow machine; without the deadline it is 'hung'
    expect(tookMs).toBeLessThan(15_000);
    expect(closedByServer).toBe(true);
  });
});
