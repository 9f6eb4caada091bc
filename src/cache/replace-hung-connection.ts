/**
 * Replaces a Redis connection that stopped answering while its socket stays open: a network path
 * that drops packets (a partition, a blackholed port: no RST, no FIN) leaves the commands timing
 * out (ioredis `commandTimeout`) on a socket whose unacknowledged bytes TCP retransmits with
 * exponential backoff, so once the path heals the connection answers again only at its next
 * retransmission. An outside check blackholed Redis for 15–25 s: the breaker closed 1.5–11.6 s
 * after the heal (every cached read bypassed, the login throttle failing open meanwhile), the
 * same sockets at `backoff:6` in `ss`; a reset (RST) instead healed in 0.2–0.5 s.
 *
 * Rule: a command timed out, and not a byte was read from the connection since it was sent (a
 * late answer to any command counts: a slow Redis is not replaced while it answers at all), also
 * once the event loop has read what was waiting in the socket when the timeout fired (a blocked
 * loop runs the timeout before the answer). The connection is then dropped and a new one made
 * (`disconnect(true)`: the client's capped reconnect backoff and its 1 s connect timeout,
 * failFastRedisOptions), at most once per `minIntervalMs`; while the new one connects, commands
 * fail at once (no offline queue). A frozen Redis (SIGSTOP) takes the new connection into its kernel's backlog and answers
 * nothing on it until it resumes, as on the old one. Commands sent on the old connection and not
 * answered are sent again on the new one (ioredis `autoResendUnfulfilledCommands`, as after any
 * reconnect): every command this product sends to Redis may run twice.
 *
 * How: by wrapping the client's `sendCommand`, the one method every command of ioredis goes
 * through (5.x), to watch each command's promise; the command itself is untouched.
 */
import type { Redis } from 'ioredis';

/** ioredis's rejection of a command past `commandTimeout` (Command.js) */
const COMMAND_TIMED_OUT = 'Command timed out';

export interface ReplaceHungOptions {
  minIntervalMs?: number;
  /** told each time the connection is replaced (for a log line) */
  onReplace?: () => void;
  /** the clock of `minIntervalMs`: monotonic (`performance.now`) unless a test gives one */
  now?: () => number;
}

export function replaceHungConnection(
  redis: Redis,
  { minIntervalMs = 2000, onReplace, now = () => performance.now() }: ReplaceHungOptions = {},
): void {
  /**
   * Reads from the connection's socket so far: any bytes at all, a late answer to a command
   * already given up on included (counting settled commands took a Redis answering every command
   * 150 ms late past a 100 ms timeout for a hung one: replaced 15 times in 3 s, a review)
   */
  let reads = 0;
  const count = () => {
    reads++;
  };
  redis.on('connect', () => {
    (redis as unknown as { stream?: { on(e: 'data', f: () => void): void } }).stream?.on('data', count);
  });
  let replacedAt = Number.NEGATIVE_INFINITY;
  const send = redis.sendCommand.bind(redis);
  type Command = Parameters<Redis['sendCommand']>[0];
  // a command sent again on a new connection (autoResendUnfulfilledCommands) is watched once:
  // its promise settled on the old one, and its timeout must not count against the new one
  const watched = new WeakSet<Command>();
  redis.sendCommand = ((command: Command, ...rest: unknown[]) => {
    const readsBefore = reads;
    const result = (send as (c: Command, ...r: unknown[]) => unknown)(command, ...rest);
    if (watched.has(command)) return result;
    watched.add(command);
    command.promise.then(
      () => {},
      (error: unknown) => {
        if (!(error instanceof Error) || error.message !== COMMAND_TIMED_OUT) return;
        // decided in the check phase, after this turn's poll phase has read what already waits
        // in the socket: when the event loop was blocked past the timeout (a start-up import, a
        // long GC), the timeout's timer runs before the answer that came meanwhile is read, and
        // a connection that did answer was replaced (the unit test blocks the loop 150 ms past a
        // 100 ms timeout)
        setImmediate(() => {
          const at = now();
          if (reads !== readsBefore || at - replacedAt < minIntervalMs) return;
          replacedAt = at;
          onReplace?.();
          redis.disconnect(true);
        });
      },
    );
    return result;
  }) as Redis['sendCommand'];
}
