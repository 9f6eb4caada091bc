/**
 * Load generators of the benchmark, both in this process (on the same 2 cores as the system under
 * test, so each result also records how much CPU the generator itself took):
 *
 * - `closedLoop`: autocannon's programmatic API, `connections` clients each sending its next
 *   request as soon as the previous answer arrived — the maximum rate. With `overallRate`,
 *   autocannon's own rate limit: each client may send `overallRate / connections` requests per
 *   wall-clock second and then pauses until the next second starts, so the load comes in
 *   per-second bursts (each client's quota back to back), not evenly spaced.
 * - `paced`: an open-loop generator for constant-rate runs with evenly spaced arrivals; each
 *   latency is counted from the moment the request was due, not from when it could be sent, so a
 *   stalled server or a late generator is charged in full (no coordinated omission). It also
 *   reports how late the generator itself was, to tell the two apart. It sends one fixed request,
 *   or asks a `PacedSource` for each one (writes that depend on earlier answers, e.g. returning
 *   the loans borrowed before).
 *
 * Latency percentiles are nearest-rank over every answer (2xx or not); socket errors and
 * timeouts have no latency and are counted apart.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';

export type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Req {
  method?: Method;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

/** autocannon's per-client context: reset each time the client starts its sequence again */
export type Ctx = Record<string, unknown>;

export interface Step {
  /** the request to send; `undefined` restarts the client's sequence from the first step */
  build: (ctx: Ctx) => Req | undefined;
  onResponse?: (status: number, body: string, ctx: Ctx) => void;
}

export interface LoadResult {
  seconds: number;
  /** answers received (any status) */
  requests: number;
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** answers with a status outside 2xx */
  non2xx: number;
  /** connection errors and timeouts (no answer) */
  socketErrors: number;
  errors: number;
  statusCodes: Record<string, number>;
  /** CPU the load generator (this process) used, in % of one core */
  generatorCpuPercent: number;
  /** paced runs: how late the generator itself got round to requests (p99, max; ms) */
  generatorLag?: { p99: number; max: number };
}

export interface ClosedLoopOptions {
  connections?: number;
  seconds?: number;
  /** autocannon `overallRate`: requests per second over all connections */
  overallRate?: number;
}

export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1))]!;
}

function summarise(
  latencies: number[],
  seconds: number,
  non2xx: number,
  socketErrors: number,
  statusCodes: Record<string, number>,
  cpu: NodeJS.CpuUsage,
): LoadResult {
  latencies.sort((a, b) => a - b);
  return {
    seconds,
    requests: latencies.length,
    rps: seconds > 0 ? latencies.length / seconds : 0,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    max: latencies.at(-1) ?? 0,
    non2xx,
    socketErrors,
    errors: non2xx + socketErrors,
    statusCodes,
    generatorCpuPercent: seconds > 0 ? ((cpu.user + cpu.system) / 1e6 / seconds) * 100 : 0,
  };
}

export async function closedLoop(
  base: string,
  steps: Step[],
  { connections = 16, seconds = 5, overallRate }: ClosedLoopOptions = {},
): Promise<LoadResult> {
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const requests = steps.map((step) => ({
    // autocannon merges the returned fields over its defaults (method GET, no body)
    setupRequest: (defaults: Record<string, unknown>, ctx: Ctx) => {
      const r = step.build(ctx);
      if (!r) return undefined;
      return { ...defaults, method: r.method ?? 'GET', path: r.path, headers: r.headers ?? {}, body: r.body };
    },
    ...(step.onResponse ? { onResponse: step.onResponse } : {}),
  }));
  const instance = autocannon({
    url: base,
    connections,
    duration: seconds,
    timeout: 10,
    ...(overallRate ? { overallRate } : {}),
    requests,
  } as unknown as autocannon.Options);
  const emitter = instance as unknown as NodeJS.EventEmitter;
  emitter.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
    latencies.push(ms);
  });
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    emitter.once('done', resolve);
    emitter.once('error', reject);
  });
  const elapsed = (performance.now() - t0) / 1000;
  const statusCodes: Record<string, number> = {};
  for (const [code, { count }] of Object.entries(
    (result as unknown as { statusCodeStats: Record<string, { count: number }> }).statusCodeStats,
  )) {
    statusCodes[code] = count;
  }
  // autocannon's `errors` already includes its `timeouts`
  return summarise(
    latencies,
    result.duration || elapsed,
    result.non2xx,
    result.errors,
    statusCodes,
    process.cpuUsage(cpu0),
  );
}

/**
 * Where a paced run gets its requests when they are not all the same: `next` is called when a
 * request is handed to a free connection (not when it fell due), so it can use every answer that
 * arrived before; `answered` (optional) gets that request's status and body.
 */
export interface PacedSource {
  next(): { req: Req; answered?: (status: number, body: string) => void };
}

export interface PacedOptions {
  rate: number;
  seconds?: number;
  /** keep-alive connections to the target; a request due while all are busy waits, and that wait counts */
  sockets?: number;
  timeoutMs?: number;
  /** when given, each answer's [ms after the start it was due, latency ms] is pushed here */
  samples?: Array<[number, number]>;
}

/**
 * Length of the first complete HTTP/1.1 response in `buf` (Content-Length or chunked body), or 0
 * while it is incomplete. Enough for the answers of this API and HAProxy; not a general parser.
 */
export function responseLength(buf: Buffer): number {
  const headerEnd = buf.indexOf('\r\n\r\n');
  if (headerEnd < 0) return 0;
  const head = buf.toString('latin1', 0, headerEnd).toLowerCase();
  const bodyStart = headerEnd + 4;
  const length = /\r\ncontent-length:\s*(\d+)/.exec(head);
  if (length) {
    const end = bodyStart + Number(length[1]);
    return buf.length >= end ? end : 0;
  }
  if (!/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) return bodyStart; // 204, 304: no body
  let pos = bodyStart;
  for (;;) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return 0;
    const size = Number.parseInt(buf.toString('latin1', pos, eol), 16);
    if (size === 0) return buf.length >= eol + 4 ? eol + 4 : 0;
    pos = eol + 2 + size + 2;
    if (pos > buf.length) return 0;
  }
}

/** The body of one complete HTTP/1.1 response (as framed by responseLength), chunks joined. */
export function responseBody(response: Buffer): string {
  const headerEnd = response.indexOf('\r\n\r\n');
  if (headerEnd < 0) return '';
  const head = response.toString('latin1', 0, headerEnd).toLowerCase();
  const bodyStart = headerEnd + 4;
  if (!/\r\ntransfer-encoding:[^\r]*chunked/.test(head)) return response.toString('utf8', bodyStart);
  const parts: Buffer[] = [];
  for (let pos = bodyStart; ; ) {
    const eol = response.indexOf('\r\n', pos);
    const size = eol < 0 ? 0 : Number.parseInt(response.toString('latin1', pos, eol), 16);
    if (!(size > 0)) return Buffer.concat(parts).toString('utf8');
    parts.push(response.subarray(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
}

type Answer = (status: number | undefined, response: Buffer) => void;

/** One keep-alive connection sending one request at a time; reconnects after a failure. */
class PacedConnection {
  private socket: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private current: { done: Answer } | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.socket = this.open();
  }

  get busy(): boolean {
    return this.current !== undefined;
  }

  private open(): Socket {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      const end = responseLength(this.buf);
      if (end === 0 || !this.current) return;
      const status = Number(this.buf.toString('latin1', 9, 12));
      const response = this.buf.subarray(0, end);
      this.buf = this.buf.subarray(end);
      const { done } = this.current;
      this.current = undefined;
      done(status, response);
    });
    const fail = () => {
      const c = this.current;
      this.current = undefined;
      this.buf = Buffer.alloc(0);
      if (this.socket === socket) this.socket = this.open();
      c?.done(undefined, Buffer.alloc(0));
    };
    socket.once('error', fail);
    socket.once('close', fail);
    return socket;
  }

  send(request: Buffer, done: Answer): void {
    this.current = { done };
    this.socket.write(request);
  }

  close(): void {
    this.socket.removeAllListeners('close');
    this.socket.removeAllListeners('error');
    this.socket.on('error', () => {});
    this.socket.destroy();
  }
}

/**
 * Open loop at a constant `rate`: request i is due at start + i / rate whatever happened before;
 * its latency runs from that moment to the end of its answer. Raw keep-alive sockets and one
 * prebuilt request keep the generator about as cheap per request as autocannon (node:http's
 * client costs about 1.5× as much CPU, which on 2 shared cores would be charged to the API);
 * a `PacedSource`'s requests are serialised one by one, as autocannon does.
 */
export async function paced(
  base: string,
  source: Req | PacedSource,
  { rate, seconds = 5, sockets = 32, timeoutMs = 10_000, samples }: PacedOptions,
): Promise<LoadResult> {
  const url = new URL(base);
  const host = url.hostname;
  const port = Number(url.port || 80);
  const serialise = (req: Req) => {
    const body = req.body ?? '';
    const headerLines = Object.entries(req.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    return Buffer.from(
      `${req.method ?? 'GET'} ${req.path} HTTP/1.1\r\nHost: ${url.host}\r\n${headerLines}` +
        `${body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : ''}\r\n${body}`,
    );
  };
  const fixed = 'next' in source ? undefined : serialise(source);
  const nextRequest = (): { request: Buffer; answered?: (status: number, body: string) => void } => {
    if (fixed) return { request: fixed };
    const { req, answered } = (source as PacedSource).next();
    return { request: serialise(req), answered };
  };
  const pool: PacedConnection[] = [];
  const waiting: number[] = [];
  const latencies: number[] = [];
  const lags: number[] = [];
  const statusCodes: Record<string, number> = {};
  let non2xx = 0;
  let socketErrors = 0;
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const cpu0 = process.cpuUsage();
  const start = performance.now() + 10;
  let sent = 0;
  let settled = 0;
  let last = start;

  await new Promise<void>((resolve) => {
    const deadline = setTimeout(
      () => {
        socketErrors += total - settled; // never answered: counted as timeouts
        resolve();
      },
      seconds * 1000 + timeoutMs,
    );
    const dispatch = (conn: PacedConnection, due: number) => {
      const { request, answered } = nextRequest();
      conn.send(request, (status, response) => {
        settled++;
        last = performance.now();
        if (status === undefined) socketErrors++;
        else {
          answered?.(status, responseBody(response));
          latencies.push(last - due);
          samples?.push([due - start, last - due]);
          statusCodes[status] = (statusCodes[status] ?? 0) + 1;
          if (status < 200 || status >= 300) non2xx++;
        }
        const next = waiting.shift();
        if (next !== undefined) dispatch(conn, next);
        if (settled === total) {
          clearTimeout(deadline);
          resolve();
        }
      });
    };
    const submit = (due: number) => {
      let conn = pool.find((c) => !c.busy);
      if (!conn && pool.length < sockets) {
        conn = new PacedConnection(host, port);
        pool.push(conn);
      }
      if (conn) dispatch(conn, due);
      else waiting.push(due);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const due = start + sent * interval;
        lags.push(now - due);
        submit(due);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, Math.min(1, start + sent * interval - now)));
    };
    setTimeout(tick, 10);
  });
  for (const c of pool) c.close();
  lags.sort((a, b) => a - b);
  return {
    ...summarise(latencies, (last - start) / 1000, non2xx, socketErrors, statusCodes, process.cpuUsage(cpu0)),
    generatorLag: { p99: percentile(lags, 0.99), max: lags.at(-1) ?? 0 },
  };
}
