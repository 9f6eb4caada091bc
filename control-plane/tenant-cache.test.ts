import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { redisFailure } from './tenant-cache.js';

const ctx = { env: { SHARDGATE_REDIS_URL: 'redis://127.0.0.1:6380' } } as unknown as CtlContext;

describe("redisFailure (a move's Redis call that failed, as its one line)", () => {
  it('is unreachable (exit 2) when Redis does not answer: a timeout, a refused or dropped connection', () => {
    for (const cause of [new Error('Command timed out'), new Error('connect ECONNREFUSED 127.0.0.1:6380')]) {
      const failure = redisFailure(ctx, cause);
      expect(failure).toBeInstanceOf(UnreachableError);
      expect(failure.message).toBe(
        `redis unreachable at 127.0.0.1:6380: ${cause.message} (a move clears the tenant's cache entries on the shards it moves between)`,
      );
    }
  });

  it('is a user error (exit 1) naming what Redis answered, when it refused the command', () => {
    const failure = redisFailure(
      ctx,
      new ReplyError('NOPERM this user has no permissions to run the unlink command'),
    );
    expect(failure).toBeInstanceOf(UserError);
    expect(failure).not.toBeInstanceOf(UnreachableError);
    expect(failure.message).toMatch(
      /^redis at 127\.0\.0\.1:6380 answered: NOPERM this user has no permissions/,
    );
  });
});
