/**
 * Health probes of the local stack: each one speaks a little of the service's own protocol, so
 * "healthy" means the service answers, not merely that some process holds the port (a SIGSTOPped
 * server still accepts TCP connections into its backlog). Every probe resolves false on error or
 * after its timeout; none throws.
 */
import { connect } from 'node:net';
import { createConnection } from 'mysql2';

/** A TCP connect to `host:port` succeeds within `timeoutMs`. */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Status code of a GET, undefined when there is no answer within `timeoutMs`. */
export async function httpStatus(url: string, timeoutMs = 1000): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

export interface ExchangeOptions {
  host?: string;
  /** bytes written once connected (none: wait for the server to speak first) */
  send?: string | Buffer;
  /** true once the bytes received so far are a healthy answer */
  accept: (received: Buffer) => boolean;
  timeoutMs?: number;
}

/** Connect, optionally send, and wait for an answer that `accept` likes. */
export function tcpExchange(
  port: number,
  { host = '127.0.0.1', send, accept, timeoutMs = 1000 }: ExchangeOptions,
): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    let received = Buffer.alloc(0);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => {
      if (send !== undefined) sock.write(send);
    });
    sock.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (accept(received)) done(true);
    });
    sock.once('end', () => done(accept(received)));
  });
}

/** Redis answers PING with +PONG. */
export const redisPing = (port: number) =>
  tcpExchange(port, { send: 'PING\r\n', accept: (b) => b.toString('latin1').startsWith('+PONG') });

/** An AMQP 0-9-1 broker answers the protocol header with a method frame (Connection.Start). */
export const amqpHandshake = (port: number) =>
  tcpExchange(port, {
    send: Buffer.from([0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1]),
    accept: (b) => b.length >= 7 && b[0] === 1,
    timeoutMs: 2000,
  });

/** An SMTP server greets with 220. */
export const smtpGreeting = (port: number) =>
  tcpExchange(port, { accept: (b) => /^220[ -]/.test(b.toString('latin1')) });

/** mysql2's error for a login the server answered with a refusal of the user */
const LOGIN_REFUSED = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_HOST_NOT_PRIVILEGED',
]);
const serverRefusedLogin = (error: { code?: string }) => LOGIN_REFUSED.has(error.code ?? '');

/**
 * MariaDB/MySQL lets root log in (no password, as mariadb-install-db leaves the local stack's nodes) and
 * answers a ping. The probe logs in rather than reading the server's greeting and hanging up: a
 * connection closed before it authenticates is an "Aborted connection … 'unauthenticated'" warning
 * in the server's log, two per node for every `stack status`, which buried real ones (an outside
 * check). This one ends with COM_QUIT, which the server does not log.
 *
 * A server that refuses root's login (a password set on it, or no root@127.0.0.1) answers all the
 * same, so it is up, as the greeting probe had it, and logs a warning per probe then. False on
 * anything else: no answer within `timeoutMs`, a closed port, or "too many connections" (a node
 * out of connections is not one to call healthy).
 */
export function mysqlLogin(
  port: number,
  {
    host = '127.0.0.1',
    user = 'root',
    timeoutMs = 1000,
  }: { host?: string; user?: string; timeoutMs?: number } = {},
): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = createConnection({ host, port, user, connectTimeout: timeoutMs });
    let settled = false;
    const timer = setTimeout(() => finish(false), timeoutMs);
    function finish(ok: boolean): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (ok) conn.end(() => {});
      else conn.destroy();
      resolve(ok);
    }
    // an error after the answer (the server gone while COM_QUIT is sent) changes nothing
    conn.on('error', () => finish(false));
    conn.ping((error) => finish(!error || serverRefusedLogin(error)));
  });
}
