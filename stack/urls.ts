/**
 * Base URLs of the local stack's HTTP services, derived from stack/topology.ts (no port is written
 * here): what the integration tests and the bench call. etcd's is `etcdClientUrl` in stack/etcd.ts.
 */
import { topology } from './topology.js';

const H = topology.host;

/** HAProxy's frontend: the API as clients reach it */
export const haproxyUrl = `http://${H}:${topology.haproxy.port}`;

/** each API instance directly, in topology order (api-1 first) */
export const apiUrls: string[] = topology.apis.map((a) => `http://${H}:${a.port}`);

/** the email worker, which serves only its Prometheus `/metrics` */
export const workerUrl = `http://${H}:${topology.worker.metricsPort}`;
