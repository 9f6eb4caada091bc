/**
 * Where the JSON lines pino formats go: a file descriptor (stdout), written at once and
 * synchronously, so lines keep their order and a crash's last lines are out before the process
 * ends; and a destination that refuses writes never stops the process (an outside check: with the
 * log's disk full, every instance froze at its next line and crashed once space was freed).
 *
 * Contract, per line (`write` is given one whole line, newline included):
 * - written with `fs.writeSync`, looping over partial writes;
 * - EAGAIN (also EBUSY, EINTR, or a write of 0 bytes) — stdout a non-blocking pipe whose reader is
 *   slow: what is left of the line, and every line after it, is held in order and written once
 *   the destination takes it: tried again at the next line, every `retryMs` meanwhile, and for up
 *   to a second when the process exits (10 ms apart; what is left then is counted as dropped).
 *   Nothing sleeps before that. While lines are held, a line that would take
 *   them past `maxHeldBytes` is dropped (reason `EAGAIN`): a reader that falls behind for a while
 *   loses nothing, one that stops reading costs at most `maxHeldBytes` of memory.
 * - any other error (ENOSPC, EDQUOT, EFBIG, EIO, EPIPE, EBADF, …): the line is dropped and counted
 *   under its error code; the next line is tried as usual, so a disk freed again is written to at
 *   once. A line the error cut short is ended with a newline before the next one: every other
 *   line in the file stays one line of JSON.
 * - the first write that succeeds after lines were dropped has `reportDropsWith`'s callback
 *   called (in a microtask, so the logger writes it as a line of its own), once per reason, with
 *   the count since the last report.
 * Counts per reason since start: `dropped()`, and `shardgate_log_lines_dropped_total{reason}`
 * from `countDropsIn(metrics)` on (lines dropped before are added then).
 *
 * A destination that blocks rather than fails (a blocking pipe nobody reads, a hung network
 * mount) would block the event loop: for fds 1 and 2 Node's `process.stdout`/`process.stderr` is
 * created first, which makes a pipe non-blocking (libuv), as pino's default destination did. A
 * regular file on a slow disk is written synchronously, as any log line through sonic-boom's
 * `sync: true` would be.
 *
 * Why not pino's own destination (pino 10.4 with sonic-boom 4.2.1, checked first):
 * - its default, sonic-boom with `sync: false`, emits a failed write as 'error', which pino
 *   re-emits with no listener: an uncaught exception. Its exit hook then calls `flushSync`, which
 *   retries every error but EAGAIN/EBUSY forever with a 100 ms blocking sleep: the frozen process
 *   that ignored SIGTERM. (sonic-boom 5 throws there; pino 10.4 depends on ^4.)
 * - `pino.destination({ sync: true, retryEAGAIN: () => false, maxLength })` with an 'error'
 *   listener neither crashes nor hangs, but sonic-boom keeps a refused chunk and writes it before
 *   every later line, with no public way to drop it: lines are dropped only once `maxLength`
 *   bytes are held (the newest ones), so nothing is counted until then, and an unbounded buffer
 *   without it. Its default `retryEAGAIN` in sync mode sleeps the event loop 100 ms per try,
 *   without end while a reader is stopped. Transports write through sonic-boom too, in a thread.
 */
import { writeSync as fsWriteSync } from 'node:fs';
import type { CounterHandle, Metrics } from './metrics.js';

/** exposed as `shardgate_log_lines_dropped_total` (the metrics add the prefix) */
export const LOG_LINES_DROPPED = 'log_lines_dropped_total';

/** errors after which the destination may take the same bytes later: held, not dropped */
const TRY_LATER = new Set(['EAGAIN', 'EWOULDBLOCK', 'EBUSY', 'EINTR']);
const NEWLINE = Buffer.from('\n');
/** how long exiting waits for held lines */
const EXIT_FLUSH_MS = 1000;
const EXIT_SLEEP = new Int32Array(new SharedArrayBuffer(4));

export interface LogDestinationOptions {
  /** file descriptor the lines go to: stdout */
  fd?: number;
  /** bytes held while the destination answers EAGAIN; a line beyond them is dropped */
  maxHeldBytes?: number;
  /** held lines are tried again after this long, if no new line came first */
  retryMs?: number;
  /** `fs.writeSync` (tests: a fake that fails) */
  writeSync?: (fd: number, data: Uint8Array) => number;
}

/** the reason a dropped line is counted under: the write's error code */
function reasonOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'other';
}

export class LogDestination {
  private readonly fd: number;
  private readonly maxHeldBytes: number;
  private readonly retryMs: number;
  private readonly writeSync: (fd: number, data: Uint8Array) => number;
  /** lines not written yet (the first possibly in part), oldest first: only while EAGAIN lasts */
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  /** part of `held[0]` is in the destination already */
  private headStarted = false;
  /** a line was cut short by a refused write: the next one starts with a newline */
  private cut = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /** `atExit` is a listener of the process's 'exit' (while lines are held) */
  private exitHooked = false;
  private readonly totals = new Map<string, number>();
  /** dropped since the last report */
  private readonly unreported = new Map<string, number>();
  private reportScheduled = false;
  private reporter: ((dropped: number, reason: string) => void) | undefined;
  private counter: CounterHandle | undefined;
  /**
   * Exiting with lines held (a pipe whose reader is slow): tried for up to EXIT_FLUSH_MS, 10 ms
   * apart (the process is ending: sleeping blocks nothing else), then what is still held is
   * counted as dropped (`EAGAIN`) — before, one more try and the last lines of an instance
   * (`stopped`, `shutdown did not finish`) were lost uncounted (a review).
   */
  private readonly atExit = () => {
    const deadline = performance.now() + EXIT_FLUSH_MS;
    this.pump();
    while (this.held.length > 0 && performance.now() < deadline) {
      Atomics.wait(EXIT_SLEEP, 0, 0, 10);
      this.pump();
    }
    for (let i = 0; i < this.held.length; i++) this.drop('EAGAIN');
    this.held.length = 0;
    this.heldBytes = 0;
    this.headStarted = false;
  };

  constructor({
    fd = 1,
    maxHeldBytes = 1024 * 1024,
    retryMs = 100,
    writeSync = fsWriteSync,
  }: LogDestinationOptions = {}) {
    this.fd = fd;
    this.maxHeldBytes = maxHeldBytes;
    this.retryMs = retryMs;
    this.writeSync = writeSync;
    // a pipe behind stdout/stderr becomes non-blocking (see the header): EAGAIN, not a frozen loop
    if (fd === 1) void process.stdout;
    else if (fd === 2) void process.stderr;
  }

  /** pino's stream interface: one formatted line */
  write(line: string): void {
    const data = Buffer.from(line, 'utf8');
    // lines held first: the destination may take them now
    if (this.held.length > 0) this.pump();
    if (this.held.length > 0 && this.heldBytes + data.length > this.maxHeldBytes) {
      this.drop('EAGAIN');
      return;
    }
    this.held.push(data);
    this.heldBytes += data.length;
    // still EAGAIN: held, the retry is armed; else this line is the only one
    if (this.held.length === 1) this.pump();
  }

  /** lines dropped since start, by reason */
  dropped(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }

  /** `report` is told, once writes work again, how many lines were dropped and why */
  reportDropsWith(report: (dropped: number, reason: string) => void): void {
    this.reporter = report;
  }

  /** counts dropped lines in `shardgate_log_lines_dropped_total{reason}`; call once per process */
  countDropsIn(metrics: Metrics): void {
    this.counter = metrics.counter({
      name: LOG_LINES_DROPPED,
      help: 'Log lines dropped because their destination refused the write (reason: its error code; EAGAIN: more were waiting than are held).',
      labelNames: ['reason'],
    });
    for (const [reason, n] of this.totals) this.counter.inc({ reason }, n);
  }

  /** writes what is held, until done, EAGAIN (tried again later) or nothing is left */
  private pump(): void {
    let wrote = false;
    while (this.held.length > 0) {
      let error: unknown;
      if (this.cut) {
        error = this.writeAll(NEWLINE).error;
        if (error === undefined) this.cut = false;
      }
      if (error === undefined) {
        const head = this.held[0]!;
        const result = this.writeAll(head);
        if (result.written > 0) {
          wrote = true;
          this.headStarted = true;
        }
        if (result.error === undefined) {
          this.held.shift();
          this.heldBytes -= head.length;
          this.headStarted = false;
          continue;
        }
        this.held[0] = head.subarray(result.written);
        this.heldBytes -= result.written;
        error = result.error;
      }
      const reason = reasonOf(error);
      if (TRY_LATER.has(reason)) {
        this.retryLater();
        break;
      }
      // refused: this line goes, the next is tried (a destination may refuse one and take another)
      const rest = this.held.shift()!;
      this.heldBytes -= rest.length;
      if (this.headStarted) this.cut = true;
      this.headStarted = false;
      this.drop(reason);
    }
    if (this.held.length === 0) this.stopRetrying();
    if (wrote && this.unreported.size > 0) this.scheduleReport();
  }

  /** `data` until written or an error; a write of 0 bytes counts as EAGAIN */
  private writeAll(data: Buffer): { written: number; error?: unknown } {
    let written = 0;
    while (written < data.length) {
      let n: number;
      try {
        n = this.writeSync(this.fd, written === 0 ? data : data.subarray(written));
      } catch (error) {
        return { written, error };
      }
      if (n <= 0) return { written, error: { code: 'EAGAIN' } };
      written += n;
    }
    return { written };
  }

  private drop(reason: string): void {
    this.totals.set(reason, (this.totals.get(reason) ?? 0) + 1);
    this.unreported.set(reason, (this.unreported.get(reason) ?? 0) + 1);
    this.counter?.inc({ reason });
  }

  /** held lines never keep the process alive; exiting tries them once more */
  private retryLater(): void {
    if (!this.exitHooked) {
      process.on('exit', this.atExit);
      this.exitHooked = true;
    }
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private stopRetrying(): void {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.exitHooked) process.off('exit', this.atExit);
    this.exitHooked = false;
  }

  private scheduleReport(): void {
    if (this.reportScheduled || this.reporter === undefined) return;
    this.reportScheduled = true;
    queueMicrotask(() => {
      this.reportScheduled = false;
      const counts = [...this.unreported];
      this.unreported.clear();
      for (const [reason, n] of counts) this.reporter?.(n, reason);
    });
  }
}
