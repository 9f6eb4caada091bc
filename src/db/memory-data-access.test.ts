/**
 * MemoryDataAccess's transaction rules, as the SQL adapter has them: a write commits on ok and
 * leaves nothing on a Failure or a throw; `commitWith` commits with its statements, and what
 * would go wrong after it in SQL (a statement outside the transaction, a Failure that can no
 * longer roll back, a second COMMIT) throws here.
 */
import { describe, expect, it } from 'vitest';
import { CommitGuardError } from '../domain/data-access.js';
import type { Book } from '../domain/models.js';
import { fail, ok } from '../domain/result.js';
import { MemoryDataAccess } from './memory-data-access.js';

const tenant = { id: 't1', shardId: 'shard-1' };
const at = new Date('2026-11-30T12:00:00Z');
const book = (id: string): Book => ({
  id,
  isbn: '9780131103627',
  title: 'T',
  author: 'A',
  copies: 1,
  available: 1,
  createdAt: at,
  updatedAt: at,
});

describe('MemoryDataAccess.write', () => {
  it('commits with commitWith: the statements stand and the write answers a position', async () => {
    const data = new MemoryDataAccess();
    const out = await data.write(tenant, async (repos, tx) => {
      await repos.books.insert(book('b1'));
      await tx.commitWith(() => repos.books.insert(book('b2')));
      return ok('done');
    });
    expect(out.result).toEqual(ok('done'));
    expect(out.position?.gtid).toBe('0-1-1');
    expect([...data.committed.books.keys()].sort()).toEqual(['t1/b1', 't1/b2']);
  });

  it('leaves nothing when a statement of commitWith throws', async () => {
    const data = new MemoryDataAccess();
    const write = data.write(tenant, async (repos, tx) => {
      await repos.books.insert(book('b1'));
      await tx.commitWith(async () => {
        await repos.books.insert(book('b2'));
        throw new Error('duplicate key');
      });
      return ok(undefined);
    });
    await expect(write).rejects.toThrow('duplicate key');
    expect(data.committed.books.size).toBe(0);
  });

  it('lets a write answer a Failure when a guard stopped commitWith, and commits nothing', async () => {
    const data = new MemoryDataAccess();
    const before = await data.write(tenant, async (repos) => {
      await repos.books.insert({ ...book('b1'), available: 0 });
      return ok(undefined);
    });
    const out = await data.write(tenant, async (repos, tx) => {
      try {
        await tx.commitWith(() =>
          Promise.all([repos.books.insert(book('b2')), repos.books.takeCopyOrStop('b1', at)]),
        );
      } catch (error) {
        if (error instanceof CommitGuardError) return fail('conflict', 'no_copy_available', 'none free');
        throw error;
      }
      return ok(undefined);
    });
    expect(out.result).toEqual(fail('conflict', 'no_copy_available', 'none free'));
    // the position the refusal saw: the last commit's, nothing newer
    expect(out.position).toEqual(before.position);
    expect([...data.committed.books.keys()]).toEqual(['t1/b1']);
  });

  it.each([
    {
      misuse: 'a statement after commitWith',
      error: /a statement after commitWith/,
      fn: async (repos: Parameters<Parameters<MemoryDataAccess['write']>[1]>[0]) =>
        repos.books.insert(book('b2')),
    },
    { misuse: 'a second commitWith', error: /twice/, second: true },
    {
      misuse: 'a Failure after commitWith',
      error: /failure no_copy_available after commitWith/,
      failure: true,
    },
  ])('throws on $misuse, and commits nothing', async ({ error, fn, second, failure }) => {
    const data = new MemoryDataAccess();
    const write = data.write(tenant, async (repos, tx) => {
      await tx.commitWith(() => repos.books.insert(book('b1')));
      if (fn) await fn(repos);
      if (second) await tx.commitWith(async () => undefined);
      if (failure) return fail('conflict', 'no_copy_available', 'none free');
      return ok(undefined);
    });
    await expect(write).rejects.toThrow(error);
    expect(data.committed.books.size).toBe(0);
  });
});
