/** Metrics of the live config: the revision in force, rejected keys, and the etcd link. */
import type { Metrics } from '../observability/metrics.js';
import type { ConfigStore } from './interface.js';

export function registerConfigMetrics(metrics: Metrics, config: ConfigStore): void {
  metrics.gauge({
    name: 'config_revision',
    help: 'config revision applied by this instance',
    collect: (g) => g.set({}, config.status().revision),
  });
  metrics.gauge({
    name: 'config_rejected_keys',
    help: 'etcd keys currently rejected (invalid value; last good value kept)',
    collect: (g) => g.set({}, config.status().rejected.length),
  });
  metrics.gauge({
    name: 'config_source_connected',
    help: '1 while the config source (etcd) is reachable',
    collect: (g) => g.set({}, config.status().connected ? 1 : 0),
  });
}
