/**
 * The email workers `status` asks (their metrics port serves `/health/circuit-breakers` and
 * `/health/config` as the instances do): `SHARDGATE_WORKER_URLS` (`http://host:port`, comma
 * separated), else the local stack's worker. Workers register nothing in etcd, so the CLI cannot
 * find them otherwise. `explicit`: the list was set, so a worker in it that does not answer is
 * news; the local stack's default is only reported when it answers (status run elsewhere).
 */
import { topology } from '../stack/topology.js';
import type { CtlEnv } from './ctl-context.js';

export const STACK_WORKER_URL = `http://127.0.0.1:${topology.worker.metricsPort}`;

export function workerUrls(env: Pick<CtlEnv, 'SHARDGATE_WORKER_URLS'>): {
  urls: string[];
  explicit: boolean;
} {
  const set = env.SHARDGATE_WORKER_URLS;
  // once each: a URL listed twice is one worker
  return set === undefined
    ? { urls: [STACK_WORKER_URL], explicit: false }
    : { urls: [...new Set(set)], explicit: true };
}
