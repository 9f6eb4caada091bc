/**
 * Structured JSON logs (pino). `Logger` is the small surface the rest of the code uses, so the
 * runtime-neutral core does not depend on pino itself. Credentials never go into a log line:
 * the redact paths below cover the places they could appear.
 */
import pino from 'pino';

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
}: {
  level?: string;
  base?: Record<string, unknown>;
} = {}): Logger {
  return pino({
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
  });
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
