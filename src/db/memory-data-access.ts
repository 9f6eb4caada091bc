/**
 * DataAccess in memory, for unit tests (and the embedded mode later). Writes are serialised by a
 * promise chain and run on a copy of the tables that replaces the live ones only when the domain
 * function succeeds — a Failure or a throw leaves nothing behind, like a rolled-back transaction.
 * Each commit advances a MariaDB-shaped position `0-1-<n>`. Reads report `master` when asked
 * for the master or given a position, else `replica`. `tx.now()` is the clock given to the
 * constructor (default Date.now), read once per write: it stands for the database server's.
 */
import {
  CallerGoneError,
  type DataAccess,
  type ReadOptions,
  type ReadOutcome,
  type ReplicationPosition,
  type TenantRef,
  type WriteOptions,
  type WriteOutcome,
  type WriteTransaction,
} from '../domain/data-access.js';
import type { TenantRepos } from '../domain/repositories.js';
import type { Result } from '../domain/result.js';
import { cloneTables, emptyTables, type MemoryTables, memoryTenantRepos } from './memory-repos.js';

export class MemoryDataAccess implements DataAccess {
  private tables: MemoryTables = emptyTables();
  private chain: Promise<unknown> = Promise.resolve();
  private seq = 0;
  /** the "database server's" clock of `tx.now()` (ms since the epoch); tests may set their own */
  private readonly clock: () => number;

  constructor({ now = Date.now }: { now?: () => number } = {}) {
    this.clock = now;
  }

  /** the committed tables (tests inspect row counts and the outbox) */
  get committed(): MemoryTables {
    return this.tables;
  }

  write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    // as the SQL adapter: the caller asked before the write begins and before its commit, then
    // `admitCommit` right before it
    const refuseUnwanted = (stage: CallerGoneError['stage']) => {
      if (options?.callerGone?.(stage === 'before its commit')) throw new CallerGoneError(stage);
      if (stage === 'before its commit') options?.admitCommit?.();
    };
    const run = async (): Promise<WriteOutcome<T>> => {
      refuseUnwanted('before the write began');
      const draft = cloneTables(this.tables);
      // like the SQL adapter, refuses what would go wrong there: a statement after commitWith
      // (it would run outside the transaction), a second commitWith, a Failure after it
      let committed = false;
      const tables = () => {
        if (committed) throw new Error('a statement after commitWith');
        return draft;
      };
      let at: Date | undefined;
      const tx: WriteTransaction = {
        now: async () => {
          at ??= new Date(this.clock());
          return at;
        },
        commitWith: async (last) => {
          if (committed) throw new Error('commitWith called twice in one transaction');
          refuseUnwanted('before its commit');
          const value = await last();
          committed = true;
          return value;
        },
      };
      const result = await fn(memoryTenantRepos(tables, tenant.id, this.clock), tx);
      if (!result.ok) {
        if (committed) throw new Error(`a write answered the failure ${result.code} after commitWith`);
        // as the SQL adapter: the position the refusal saw
        return { result, position: this.position(tenant) };
      }
      if (!committed) refuseUnwanted('before its commit');
      this.tables = draft;
      this.seq += 1;
      return { result, position: this.position(tenant) };
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => {});
    return next;
  }

  private position(tenant: TenantRef): ReplicationPosition {
    return { shardId: tenant.shardId, flavour: 'mariadb', gtid: `0-1-${this.seq}` };
  }

  /** memory never refuses a write */
  admitWrite(_tenant: TenantRef): void {}

  async read<T>(
    tenant: TenantRef,
    options: ReadOptions,
    fn: (repos: TenantRepos) => Promise<T>,
  ): Promise<ReadOutcome<T>> {
    const value = await fn(memoryTenantRepos(() => this.tables, tenant.id, this.clock));
    return { value, readFrom: options.from || options.position ? 'master' : 'replica' };
  }
}
