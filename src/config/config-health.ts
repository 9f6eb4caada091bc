/**
 * The body of `GET /health/config` (CONTRACT.md §6), from a ConfigStore: the revision in force,
 * the rejected keys with their reasons, the etcd link state and the values applied. Served by the
 * API instances (routes/health.ts) and the email worker's HTTP port (entry/worker-http.ts), so a
 * value a process rejected is visible at each, not only in its log.
 */
import type { ConfigStore } from './interface.js';

export function configHealth(config: ConfigStore) {
  const s = config.status();
  const snap = config.current();
  return {
    revision: s.revision,
    etcdRevision: s.etcdRevision,
    loaded: s.loaded,
    connected: s.connected,
    disconnectedSince: s.disconnectedSince,
    source: s.source,
    lastError: s.lastError,
    refused: s.refused,
    refusedSince: s.refusedSince,
    loadedAt: s.loadedAt,
    lastChangeAt: s.lastChangeAt,
    rejected: [...s.rejected],
    applied: {
      shards: Object.fromEntries(snap.shards),
      tenants: snap.tenants.size,
      placement: snap.placement ?? null,
      breakers: snap.breakers,
      // tenants' own epochs as a count, as the directory (a Map would read `{}`)
      cache: { ...snap.cache, tenantEpochs: snap.cache.tenantEpochs.size },
      replication: snap.replication,
      mail: snap.mail,
      cors: snap.cors,
      http: snap.http,
      lbWeights: Object.fromEntries(snap.lbWeights),
    },
  };
}
