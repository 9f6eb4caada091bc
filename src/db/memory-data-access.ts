/**
 * DataAccess in memory, for unit tests (and the embedded mode later). Writes are serialised by a
 * promise chain and run on a copy of the tables that replaces the live ones only when the domain
 * function succeeds — a Failure or a throw leaves nothing behind, like a rolled-back transaction.
 * Each commit advances a MariaDB-shaped position `0-1-<n>`. Reads report `master` when asked
 * for the master or given a position, else `replica`.
 */
import type { DataAccess, ReadOptions, ReadOutcome, TenantRef, WriteOutcome } from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Result } from '../domain/result.js';
import { cloneTables, emptyTables, type MemoryTables, memoryTenantRepos } from './memory-repos.js';

export class MemoryDataAccess implements DataAccess {
  private tables: MemoryTables = emptyTables();
  private chain: Promise<unknown> = Promise.resolve();
  private seq = 0;

  /** the committed tables (tests inspect row counts and the outbox) */
  get committed(): MemoryTables {
    return this.tables;
  }

  write<T>(tenant: TenantRef, fn: (repos: TenantRepos) => Promise<Result<T>>): Promise<WriteOutcome<T>> {
    const run = async (): Promise<WriteOutcome<T>> => {
      const draft = cloneTables(this.tables);
      const result = await fn(memoryTenantRepos(() => draft, tenant.id));
      if (!result.ok) return { result };
      this.tables = draft;
      this.seq += 1;
      return { result, position: { shardId: tenant.shardId, flavour: 'mariadb', gtid: `0-1-${this.seq}` } };
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => {});
    return next;
  }

  async read<T>(
    tenant: TenantRef,
    options: ReadOptions,
    fn: (repos: TenantRepos) => Promise<T>,
  ): Promise<ReadOutcome<T>> {
    const value = await fn(memoryTenantRepos(() => this.tables, tenant.id));
    return { value, readFrom: options.from === 'master' || options.position ? 'master' : 'replica' };
  }
}
