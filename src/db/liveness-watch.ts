/**
 * Tells a frozen server from a slow statement: while a statement of unknown length runs on one
 * connection (a migration's `ALTER TABLE` can take minutes), `ping` is sent to the same server
 * on a connection of its own every `everyMs`. A server that has left one ping unanswered for
 * `silentMs` is taken as frozen (SIGSTOP, a hung VM, a partition that drops packets: the
 * statement's connection would wait for ever, since TCP still holds it open) and `onSilent`
 * runs once.
 *
 * The wait is counted on this process's own clock, tick by tick (monotonic, `performance.now`),
 * and a tick that comes late adds at most two intervals: when this process itself did not run
 * (Ctrl-Z then `fg`, a suspended laptop or VM, a clock stepped forward), the answer waiting in
 * its socket is not taken for silence (a review: a 1.5 s stall fired a 1 s watch at once).
 *
 * A ping that fails outright (its connection reset or killed) stops the watch without calling
 * `onSilent`: a server that closed connections is not frozen, and the statement's own connection
 * reports what happened to it.
 */
export interface LivenessWatchOptions {
  everyMs?: number;
  silentMs?: number;
  /** the clock (tests); performance.now by default */
  now?: () => number;
}

export function watchLiveness(
  ping: () => Promise<unknown>,
  onSilent: (silentMs: number) => void,
  { everyMs = 1000, silentMs = 10_000, now = () => performance.now() }: LivenessWatchOptions = {},
): () => void {
  let inFlight = false;
  /** how long the ping in flight has waited, counted in on-time ticks */
  let waited = 0;
  let lastTick = now();
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    if (stopped) return;
    const at = now();
    const elapsed = Math.min(at - lastTick, 2 * everyMs);
    lastTick = at;
    if (inFlight) {
      waited += elapsed;
      if (waited >= silentMs) {
        stop();
        onSilent(silentMs);
      }
      return;
    }
    inFlight = true;
    waited = 0;
    ping().then(
      () => {
        inFlight = false;
      },
      () => stop(),
    );
  }, everyMs);
  // the watch alone must not keep a process alive
  timer.unref?.();
  return stop;
}
