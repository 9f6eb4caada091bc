import type { ShardConfig } from '../src/config/schema.js';

/**
 * Two shards whose masters are the same server (host and port as written) with the same database
 * hold the same rows under two ids. Host names are compared as written, not resolved.
 */
export function sameDatabase(a: ShardConfig, b: ShardConfig): boolean {
  return a.master.host === b.master.host && a.master.port === b.master.port && a.database === b.database;
}
