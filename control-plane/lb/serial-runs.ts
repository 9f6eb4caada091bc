/**
 * Runs one async job at a time, for `lb sync --watch`'s ticks (commands/lb-sync.ts).
 *
 * - `run()` while a run is in progress does not start a second one beside it: it asks for one more
 *   run right after (however many times it was asked meanwhile), so a change noticed during a run
 *   is applied at once rather than at the next poll.
 * - `close()` refuses further runs (one asked for is dropped) and resolves once the run in progress
 *   has ended: the daemon exits right after (cli.ts), which would otherwise cut off a run's
 *   HAProxy commands and leave weights half set.
 * - A job's rejection is not this class's concern: the job is expected to handle its own errors;
 *   one that escapes is passed to `onError` and the next run goes ahead.
 */
export class SerialRuns {
  private inFlight: Promise<void> | undefined;
  private again = false;
  private closed = false;

  constructor(
    private readonly job: () => Promise<void>,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  /** starts a run now, or asks for one after the run in progress; nothing once closed */
  run(): void {
    if (this.closed) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = this.loop();
  }

  /** no more runs; resolves once the one in progress has ended */
  close(): Promise<void> {
    this.closed = true;
    return this.inFlight ?? Promise.resolve();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        try {
          await this.job();
        } catch (error) {
          this.onError(error);
        }
      } while (this.again && !this.closed);
    } finally {
      this.inFlight = undefined;
    }
  }
}
