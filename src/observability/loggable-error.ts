/**
 * What of an error goes into a log line. pino's own serializer writes every enumerable property
 * and the whole stack, and a driver's error carries the statement's values: drizzle's
 * `DrizzleQueryError` has `params` and repeats them in its message and stack (a member's email,
 * name and password hash), mysql2's errors `sql`, the statement with its values inlined. This
 * keeps the error's name, its message without the values, its codes, the stack's frames and the
 * same of its cause (two levels): never `params`, `sql` or any other property.
 */
export interface LoggableError {
  type: string;
  message: string;
  code?: string;
  errno?: number;
  sqlState?: string;
  stack?: string;
  cause?: LoggableError;
}

/** drizzle's message: `Failed query: <statement with placeholders>\nparams: <values>` */
const PARAMS_LINE = /\nparams: [\s\S]*$/;

export function loggableError(error: unknown, depth = 0): LoggableError | string {
  if (!(error instanceof Error)) return typeof error === 'string' ? error : typeof error;
  const e = error as Error & { code?: unknown; errno?: unknown; sqlState?: unknown };
  const message = e.message.replace(PARAMS_LINE, '');
  const frames = (e.stack ?? '').split('\n').filter((line) => /^\s+at /.test(line));
  // drizzle's errors keep the name `Error`: their class says more
  const type = e.name === 'Error' && e.constructor.name ? e.constructor.name : e.name;
  const out: LoggableError = { type, message };
  if (typeof e.code === 'string') out.code = e.code;
  if (typeof e.errno === 'number') out.errno = e.errno;
  if (typeof e.sqlState === 'string') out.sqlState = e.sqlState;
  if (frames.length > 0) out.stack = frames.join('\n');
  if (e.cause !== undefined && depth < 2) {
    const cause = loggableError(e.cause, depth + 1);
    if (typeof cause === 'object') out.cause = cause;
  }
  return out;
}
