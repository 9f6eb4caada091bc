/**
 * One command at a time on a tenant's rows: `tenants move`, `tenants delete-rows` and
 * `tenants create` hold an etcd lock (a key under a lease, etcd3's Lock) beside the config
 * prefix, not in it (`/shardgate.locks/tenant-move/<id>`), so no instance watches it. The lease
 * ends 10 s after a command dies, freeing the tenant for the next one. A second command of the
 * same id is refused at once (exit 1, naming the lock), never queued.
 */
import { EtcdLockFailedError, type Lock } from 'etcd3';
import type { CtlContext } from './ctl-context.js';
import { UserError } from './ctl-errors.js';
import { moveLockKey } from './move-record.js';

const MOVE_LOCK_TTL_SECONDS = 10;

export async function acquireMoveLock(ctx: CtlContext, id: string): Promise<Lock> {
  const key = moveLockKey(ctx.prefix, id);
  const lock = ctx.etcd.lock(key).ttl(MOVE_LOCK_TTL_SECONDS);
  // not said to be a write whose outcome is unknown when etcd does not answer: nothing else is
  // written yet, and a lock taken all the same ends with its lease (a command run again within
  // 10 s is refused naming the lock)
  const got = await ctx.call(async () => {
    try {
      await lock.acquire();
      return true;
    } catch (error) {
      if (error instanceof EtcdLockFailedError) return false;
      throw error;
    }
  });
  if (!got) {
    throw new UserError(
      `tenant ${id} is busy: a tenants move, delete-rows or create of it is running (etcd lock ${key}); wait for it to end, or ${MOVE_LOCK_TTL_SECONDS} s after it was killed`,
    );
  }
  return lock;
}

/** `fn` under the tenant's lock, released after (a release that fails: the lease ends it) */
export async function withMoveLock<T>(ctx: CtlContext, id: string, fn: () => Promise<T>): Promise<T> {
  const lock = await acquireMoveLock(ctx, id);
  try {
    return await fn();
  } finally {
    await lock.release().catch(() => {});
  }
}
