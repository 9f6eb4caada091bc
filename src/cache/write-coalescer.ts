/**
 * Coalesces the writes to one socket within one turn of the event loop: the first write of a
 * turn corks the stream, and an immediate (the check phase, right after the poll phase that ran
 * the turn's I/O callbacks) uncorks it, so every command the turn's requests sent leaves in one
 * `writev` — one system call, and one wake-up of the server, instead of one per command.
 *
 * Why by hand: ioredis' auto-pipelining flushes per tick (`process.nextTick`), which ends after
 * each socket callback, so requests arriving in the same turn still wrote one by one; and its
 * Pipeline objects kept requests alive across young-generation GCs (src/cache/redis.ts). Corking
 * the socket keeps ioredis' plain one-command path and only changes when the bytes leave.
 *
 * Contract: a command is delayed at most until the end of the current poll phase (or, when sent
 * from the check phase itself, the next one). A stream that is replaced (reconnect) while corked
 * is uncorked all the same; uncorking a destroyed stream does nothing.
 */
import type { Writable } from 'node:stream';

export class WriteCoalescer {
  private corked: Writable | undefined;

  /** `current()` answers the stream to write to now, or undefined when there is none */
  constructor(private readonly current: () => Writable | undefined) {}

  /** call before each write; the first call of a turn corks the stream until the check phase */
  beforeWrite(): void {
    if (this.corked) return;
    const stream = this.current();
    if (!stream?.writable) return;
    stream.cork();
    this.corked = stream;
    setImmediate(() => {
      this.corked = undefined;
      stream.uncork();
    });
  }
}
