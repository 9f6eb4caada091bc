import { describe, expect, it, vi } from 'vitest';
import type { Logger } from './logger.js';
import { WarnLimiter } from './warn-limiter.js';

function recorder() {
  const lines: { fields: Record<string, unknown>; msg: string }[] = [];
  const logger = { warn: (fields: Record<string, unknown>, msg: string) => lines.push({ fields, msg }) };
  return { lines, logger: logger as unknown as Logger };
}

describe('WarnLimiter', () => {
  it('logs the first warning at once, then one per interval counting the ones it stands for', () => {
    const { lines, logger } = recorder();
    let t = 0;
    const limiter = new WarnLimiter(logger, 30_000, () => t);
    expect(limiter.warned).toBe(false);
    limiter.warn({ err: 'a' }, 'down');
    for (let i = 0; i < 29; i++) {
      t += 1000;
      limiter.warn({ err: i % 2 ? 'a' : 'b' }, 'down');
    }
    expect(lines).toEqual([{ fields: { err: 'a', repeatsSinceLast: 0 }, msg: 'down' }]);
    t += 1000;
    limiter.warn({ err: 'b' }, 'down');
    expect(lines[1]).toEqual({ fields: { err: 'b', repeatsSinceLast: 29 }, msg: 'down' });
    expect(limiter.warned).toBe(true);
  });

  it('after reset, the next warning is logged at once; reset answers the unlogged ones', () => {
    const { lines, logger } = recorder();
    let t = 0;
    const limiter = new WarnLimiter(logger, 30_000, () => t);
    limiter.warn({}, 'down');
    t += 10;
    limiter.warn({}, 'down');
    limiter.warn({}, 'down');
    expect(limiter.reset()).toBe(2);
    expect(limiter.warned).toBe(false);
    t += 10;
    limiter.warn({}, 'down again');
    expect(lines.map((l) => l.msg)).toEqual(['down', 'down again']);
  });

  it("with level 'error' logs at error level, limited the same way", () => {
    const errors: string[] = [];
    const logger = {
      warn: () => errors.push('a warning'),
      error: (_fields: Record<string, unknown>, msg: string) => errors.push(msg),
    } as unknown as Logger;
    let t = 0;
    const limiter = new WarnLimiter(logger, 60_000, () => t, 'error');
    for (let i = 0; i < 10; i++, t += 1000) limiter.warn({}, 'relay failed');
    expect(errors).toEqual(['relay failed']);
  });

  it('paces on the monotonic clock by default: a wall clock stepped back an hour does not silence it', () => {
    // Date and performance.now faked apart: setSystemTime steps the wall clock only (NTP, date -s)
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    try {
      const { lines, logger } = recorder();
      const limiter = new WarnLimiter(logger, 30_000);
      limiter.warn({}, 'down');
      vi.setSystemTime(Date.now() - 3_600_000);
      for (let i = 0; i < 31; i++) {
        vi.advanceTimersByTime(1000);
        limiter.warn({}, 'down');
      }
      // on Date.now the second line would have waited for the hour to pass again
      expect(lines.map((l) => l.fields.repeatsSinceLast)).toEqual([0, 29]);
    } finally {
      vi.useRealTimers();
    }
  });
});
