/**
 * Structured JSON logs (pino). `Logger` is the small surface the rest of the code uses, so the
 * runtime-neutral core does not depend on pino itself. Credentials never go into a log line:
 * the redact paths below cover the places they could appear.
 * Lines go to a LogDestination (stdout unless given): written synchronously, and a destination
 * that refuses them (a full disk) costs the lines, counted, never the process
 * (log-destination.ts). Once it takes lines again, one warning says how many were dropped and why.
 */
import pino from 'pino';
import { LogDestination } from './log-destination.js';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

export function createLogger({
  level = 'info',
  base = {},
  destination = new LogDestination(),
}: {
  level?: string;
  base?: Record<string, unknown>;
  /** where lines go; the entries keep it to count its dropped lines in their metrics */
  destination?: LogDestination;
} = {}): Logger {
  const logger = pino(
    {
      level,
      base,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'password',
          '*.password',
          'currentPassword',
          'newPassword',
          '*.authorization',
          'headers.authorization',
          'secret',
          '*.secret',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
  // a line of its own, in the log's format, once the destination takes lines again
  destination.reportDropsWith((dropped, reason) =>
    logger.warn({ dropped, reason }, "log lines were dropped: the log's destination refused them"),
  );
  return logger;
}

/** A logger that drops everything: unit tests. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
