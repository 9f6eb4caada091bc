/**
 * `status` when etcd does not answer: what can still be asked without it, then the etcd error
 * (exit 2, its one line on stderr). The instances keep serving with the config they loaded, so
 * an operator in an outage wants to know whether they do: HAProxy's servers (on HAProxy's host,
 * from its runtime socket; their addresses are how the instances are found, since the registry
 * is in etcd), what each answers at `/health/ready` and `/health/config` (the config revision it
 * runs, and since when it has lost etcd), and the email workers. Each asked within 1 s.
 *
 * Nothing here is from etcd: no shard map, weights in etcd or registrations. An instance that
 * HAProxy does not list (status run off HAProxy's host, an instance outside its backend) is not
 * found.
 */
import { topology } from '../../stack/topology.js';
import { alignColumns } from '../columns.js';
import type { CtlContext } from '../ctl-context.js';
import type { EtcdUnreachableError } from '../ctl-errors.js';
import { readiness } from '../instance-readiness.js';
import { configHealthOf } from '../instance-rejections.js';
import { serverStateWord, showServers } from '../lb/haproxy-runtime.js';
import { oneLine } from '../terminal-safe.js';
import { workerUrls } from '../worker-urls.js';
import { haproxySocketPath } from './lb-sync.js';

/** the revision and etcd connection `/health/config` reports, or undefined when none came */
async function configHealth(url: string) {
  const body = await configHealthOf(url);
  return (
    body && { revision: body.revision, connected: body.connected, disconnectedSince: body.disconnectedSince }
  );
}

export async function statusWithoutEtcd(
  ctx: CtlContext,
  opts: { json?: boolean },
  error: EtcdUnreachableError,
): Promise<never> {
  const socket = haproxySocketPath(undefined, ctx.env);
  const backend = topology.haproxy.backend;
  let servers: Awaited<ReturnType<typeof showServers>> | null = null;
  let haproxyError: string | undefined;
  try {
    servers = await showServers(socket, backend);
  } catch (e) {
    haproxyError = e instanceof Error ? e.message : String(e);
  }
  const instances = (servers ?? []).flatMap((sv) =>
    sv.address ? [{ id: sv.name, url: `http://${sv.address}` }] : [],
  );
  const listed = workerUrls(ctx.env);
  // an instance answers the worker's paths too: listed as one, it is left out with a warning
  for (const url of listed.urls) {
    const instance = instances.find((i) => i.url === url);
    if (instance)
      ctx.warn(`SHARDGATE_WORKER_URLS: ${url} is API instance ${instance.id}, not an email worker; left out`);
  }
  const workers = listed.urls.filter((url) => !instances.some((i) => i.url === url));
  const [ready, configs, workerConfigs] = await Promise.all([
    readiness(instances.map((i) => i.url)),
    Promise.all(instances.map((i) => configHealth(i.url))),
    Promise.all(workers.map((url) => configHealth(url))),
  ]);
  const view = {
    etcd: { endpoints: ctx.env.SHARDGATE_ETCD_ENDPOINTS, prefix: ctx.prefix, unreachable: error.message },
    haproxy: { socket, backend, servers, ...(haproxyError ? { error: haproxyError } : {}) },
    instances: instances.map((i, n) => ({
      ...i,
      health: ready.get(i.url),
      config: configs[n] ?? null,
    })),
    // the local stack's default only when it answers (status may run where no worker is)
    workers: workers
      .map((url, n) => ({ url, answering: workerConfigs[n] !== undefined, config: workerConfigs[n] ?? null }))
      .filter((w) => w.answering || listed.explicit),
  };
  if (opts.json) ctx.out(JSON.stringify(view, null, 2));
  else {
    ctx.out('etcd does not answer: what answers without it (the instances serve with the config they have)');
    ctx.out(
      servers === null
        ? `haproxy: socket ${socket} could not be asked (${oneLine(haproxyError ?? '')}); its instances are not known`
        : `haproxy backend ${backend}: ${
            servers
              .map((sv) => {
                return `${sv.name} ${serverStateWord(sv)} weight ${sv.weight}`;
              })
              .join(', ') || 'no server'
          }`,
    );
    if (view.instances.length > 0) ctx.out("instances (HAProxy's servers):");
    const lines = alignColumns(
      view.instances.map((i) => [
        i.id,
        i.url,
        i.health ?? '',
        i.config ? `config revision ${i.config.revision}` : '',
        !i.config
          ? ''
          : i.config.connected
            ? 'etcd connected'
            : `etcd lost${i.config.disconnectedSince ? ` since ${i.config.disconnectedSince}` : ''}`,
      ]),
    );
    for (const line of lines) ctx.out(`  ${line}`);
    if (view.workers.length > 0) ctx.out('email workers:');
    for (const w of view.workers) ctx.out(`  ${w.url}  ${w.answering ? 'answering' : 'not answering'}`);
  }
  throw error;
}
