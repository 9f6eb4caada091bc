/**
 * How long this process did not run in a span of time: frozen (SIGSTOP), its VM paused, or its
 * event loop held far beyond the usual tens of ms. A timer of ours that ran out meanwhile did not
 * give the other side its time: the breaker's call timeout and the pool's wait for a connection
 * give that time back (once) instead of blaming a dependency for a stall of this process (an
 * outside check froze an instance: on SIGCONT its in-flight writes timed out at once and opened
 * the master's breaker, and requests waiting for a pool connection answered `dependency_busy`,
 * though the master had answered everything during the freeze).
 *
 * A timer ticks every TICK_MS (unref'd: it keeps no process alive); a tick that comes STALL_MIN_MS
 * or more late records the time past its due as a stall. The last stalls are kept, and one going
 * on right now (its tick has not run yet) counts too. Runtime-neutral (setInterval,
 * performance.now); the clock is monotonic, so a step of the wall clock is no stall.
 */
const TICK_MS = 100;
/** late by this much, a tick tells of a stall; the event loop's own lag stays well under it */
export const STALL_MIN_MS = 250;
const KEPT = 32;
/**
 * how long after a stall the ways of reading a client's leave that cost more are used (a turn of
 * the event loop before a write's COMMIT, sql-data-access.ts; asking the kernel, caller-gone.ts)
 */
export const AFTER_STALL_MS = 5000;

interface Span {
  from: number;
  to: number;
}

const stalls: Span[] = [];
let lastTick = -1;

function tick(): void {
  const now = performance.now();
  const due = lastTick + TICK_MS;
  if (now - due >= STALL_MIN_MS) {
    stalls.push({ from: due, to: now });
    if (stalls.length > KEPT) stalls.shift();
  }
  lastTick = now;
}

/** Starts the watch (idempotent): a stall before it started is not seen. */
export function watchStalls(): void {
  if (lastTick >= 0) return;
  lastTick = performance.now();
  const timer = setInterval(tick, TICK_MS) as unknown as { unref?: () => void };
  timer.unref?.();
}

const overlap = (s: Span, from: number, to: number) =>
  Math.max(0, Math.min(s.to, to) - Math.max(s.from, from));

/** ms of [from, to] (performance.now() times) during which this process did not run */
export function stalledMs(from: number, to: number = performance.now()): number {
  if (lastTick < 0) return 0;
  let sum = 0;
  for (const s of stalls) sum += overlap(s, from, to);
  const due = lastTick + TICK_MS;
  if (to - due >= STALL_MIN_MS) sum += overlap({ from: due, to }, from, to);
  return sum;
}

/** whether this process did not run for STALL_MIN_MS or more in the last `ms`, now included */
export function stalledWithin(ms: number): boolean {
  return stalledMs(performance.now() - ms) >= STALL_MIN_MS;
}

/** a monotonic clock and the ms of [from, to] on it this process did not run (tests fake both) */
export interface StallClock {
  now(): number;
  stalledMs(from: number, to: number): number;
}

const WATCHED: StallClock = { now: () => performance.now(), stalledMs };

/**
 * `setTimeout(onTimeout, ms)`, except that when it fires after time this process did not run
 * (STALL_MIN_MS or more of the wait), it waits that time again (at most `ms`), once, before
 * `onTimeout`. Returns a function that cancels it.
 */
export function stallAwareTimeout(
  onTimeout: () => void,
  ms: number,
  clock: StallClock = WATCHED,
): () => void {
  const started = clock.now();
  let extended = false;
  let timer: ReturnType<typeof setTimeout>;
  const fire = () => {
    const lost = extended ? 0 : clock.stalledMs(started, clock.now());
    if (lost >= STALL_MIN_MS) {
      extended = true;
      timer = setTimeout(fire, Math.min(lost, ms));
      return;
    }
    onTimeout();
  };
  timer = setTimeout(fire, ms);
  return () => clearTimeout(timer);
}
