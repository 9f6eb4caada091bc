/**
 * The 429 of a password check the login throttle refused (auth/login-throttle.ts): a login, a
 * password change, and a registration's key sent again (routes/idempotency.ts), which compares
 * the password too. `Retry-After` is the throttle's.
 */
import type { LoginAdmission } from '../auth/login-throttle.js';
import { ProblemError } from '../http/problem.js';

export function tooManyLoginAttempts(refused: Extract<LoginAdmission, { admitted: false }>): ProblemError {
  const { reason, retryAfterSeconds } = refused;
  return new ProblemError({
    status: 429,
    code: 'too_many_login_attempts',
    title: 'Too many login attempts',
    detail:
      reason === 'failures'
        ? `too many failed password checks for this account; try again in ${retryAfterSeconds} s`
        : `too many password checks of this account at once; try again in ${retryAfterSeconds} s`,
    headers: { 'Retry-After': String(retryAfterSeconds) },
  });
}
