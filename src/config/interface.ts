/**
 * The live config store every part of an instance reads from (CONTRACT.md §4). Reads are
 * synchronous and never touch etcd: the store keeps the last good snapshot in memory and
 * replaces it as changes arrive. Adapters: `etcd-config-store.ts` (cluster), `memory-config-store.ts`.
 */
import type { ConfigChange, ConfigSnapshot, RejectedKey } from './config-state.js';

export type { ConfigChange, ConfigSnapshot, RejectedKey } from './config-state.js';

export interface ConfigStatus {
  /** false until a first full read succeeded; `/health/ready` answers 503 until then */
  loaded: boolean;
  /** config revision in force (see ConfigSnapshot.revision) */
  revision: number;
  /** last etcd revision the store has seen, instance registrations included (etcd store only) */
  etcdRevision?: number;
  rejected: readonly RejectedKey[];
  source: 'etcd' | 'memory';
  /** whether the store currently reaches its source; when false it serves the last good config */
  connected: boolean;
  /** since when it does not (ISO 8601), while `connected` is false after a first connection */
  disconnectedSince?: string;
  lastError?: string;
  /**
   * etcd answered and refused another call of this process for want of credentials or of a
   * role's permission (the instance registration), while the config watch may still run on a
   * stream opened before `auth enable`: `connected` stays true then, this says what fails
   * (etcd-auth-refusal.ts wording). Cleared when that call succeeds again.
   */
  refused?: string;
  /** since when (ISO 8601), while `refused` is set */
  refusedSince?: string;
  loadedAt?: string;
  lastChangeAt?: string;
}

/**
 * Called after a load, after every change of the config in force, and when only its revision
 * moved (`changes` empty: a put of the same or of a rejected value). Listeners filter by key.
 */
export type ConfigListener = (snapshot: ConfigSnapshot, changes: ConfigChange[]) => void;

export interface ConfigStore {
  /** the config in force; defaults before the first load */
  current(): ConfigSnapshot;
  status(): ConfigStatus;
  /** called after every applied change (including the first load); returns an unsubscribe */
  onChange(listener: ConfigListener): () => void;
  close(): Promise<void>;
}
