/**
 * Tells a frozen server from a slow statement: while a statement of unknown length runs on one
 * connection (a migration's `ALTER TABLE` can take minutes), `ping` is sent to the same server
 * on a connection of its own every `everyMs`. A server that has answered no ping for `silentMs`
 * is taken as frozen (SIGSTOP, a hung VM, a partition that drops packets: the statement's
 * connection would wait for ever, since TCP still holds it open) and `onSilent` runs once.
 *
 * A ping that fails outright (its connection reset or killed) stops the watch without calling
 * `onSilent`: a server that closed connections is not frozen, and the statement's own connection
 * reports what happened to it.
 */
export interface LivenessWatchOptions {
  everyMs?: number;
  silentMs?: number;
}

export function watchLiveness(
  ping: () => Promise<unknown>,
  onSilent: (silentMs: number) => void,
  { everyMs = 1000, silentMs = 10_000 }: LivenessWatchOptions = {},
): () => void {
  let lastAnswer = Date.now();
  let inFlight = false;
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    if (stopped) return;
    if (Date.now() - lastAnswer >= silentMs) {
      stop();
      onSilent(silentMs);
      return;
    }
    if (inFlight) return;
    inFlight = true;
    ping().then(
      () => {
        inFlight = false;
        lastAnswer = Date.now();
      },
      () => stop(),
    );
  }, everyMs);
  // the watch alone must not keep a process alive
  timer.unref?.();
  return stop;
}
