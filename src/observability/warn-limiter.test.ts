import { describe, expect, it } from 'vitest';
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
});
