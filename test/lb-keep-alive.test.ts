/**
 * HAProxy's idle keep-alive towards clients, and what it tells them. An API instance answers
 * `Keep-Alive: timeout=65` (its own idle timeout, above HAProxy's reuse window towards it);
 * HAProxy closes an idle client connection after `CLIENT_KEEP_ALIVE_SECONDS`, so through :8080
 * the header must say that instead. A client that believed 65 s (Node's fetch does) sent its next
 * request on a connection HAProxy had closed: `test/email.test.ts` failed with "other side
 * closed" when it paused about 10 s between requests.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CLIENT_KEEP_ALIVE_SECONDS } from '../stack/haproxy-config.js';
import { topology } from '../stack/topology.js';
import { HAPROXY } from './helpers/api.js';

describe('keep-alive towards clients', () => {
  it("advertises HAProxy's own idle timeout through :8080, not the API's", async () => {
    const direct = await fetch(`http://${topology.host}:${topology.apis[0]!.port}/health`);
    await direct.arrayBuffer();
    expect(direct.headers.get('keep-alive')).toBe('timeout=65');
    for (let i = 0; i < 4; i++) {
      // every instance, whichever answers
      const res = await fetch(`${HAPROXY}/health`);
      await res.arrayBuffer();
      expect(res.headers.get('keep-alive')).toBe(`timeout=${CLIENT_KEEP_ALIVE_SECONDS}`);
    }
  });

  it('closes an idle client connection after that timeout, not before', async () => {
    const url = new URL(HAPROXY);
    const socket = connect(Number(url.port), url.hostname);
    const answered = new Promise<number>((resolve) => socket.once('data', () => resolve(Date.now())));
    const closed = new Promise<number>((resolve) => socket.once('end', () => resolve(Date.now())));
    socket.write(`GET /health HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    const idleFrom = await answered;
    const idle = ((await closed) - idleFrom) / 1000;
    socket.destroy();
    expect(idle).toBeGreaterThanOrEqual(CLIENT_KEEP_ALIVE_SECONDS - 0.5);
    expect(idle).toBeLessThan(CLIENT_KEEP_ALIVE_SECONDS + 3);
  }, 20_000);
});
