/**
 * `SHARDGATE_DB_HOSTS`: the database servers a shard in etcd may name, from the environment of
 * each process that connects to them (API, worker, `npm run migrate`, shardgate-ctl). Whoever can
 * write etcd can otherwise point a shard's master or replica at a server of their own, and every
 * instance would connect there and send it the shard's password (and, as a master, every write of
 * its tenants). With the list set, such a `shards/<id>` value is rejected like any invalid value:
 * the last good one stays in force, and `/health/config` names the server.
 *
 * The list is comma-separated `host` (any port) or `host:port` entries; an IPv6 address is
 * written in brackets, `[::1]` or `[::1]:3306`. Hosts compare case-insensitively and are never
 * resolved (a name and its address are different entries). Unset: every server is allowed.
 */
import { formatHostPort } from './host-port.js';

export interface DbHostPolicy {
  /** the list as given, for messages */
  readonly text: string;
  allows(host: string, port: number): boolean;
}

const ENTRY = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+))(?::(\d{1,5}))?$/;

/** The policy of a SHARDGATE_DB_HOSTS value; throws an Error naming the first bad entry. */
export function parseDbHosts(text: string): DbHostPolicy {
  const entries = text
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '')
    .map((e) => {
      const m = ENTRY.exec(e);
      const port = m?.[3] === undefined ? undefined : Number(m[3]);
      if (!m || (port !== undefined && (port < 1 || port > 65535))) {
        throw new Error(`"${e}" is not a host or host:port (an IPv6 address in brackets)`);
      }
      return { host: (m[1] ?? m[2]!).toLowerCase(), port };
    });
  if (entries.length === 0) throw new Error('names no server (leave it unset to allow every server)');
  return {
    text: entries
      .map((e) =>
        e.port === undefined
          ? e.host.includes(':')
            ? `[${e.host}]`
            : e.host
          : formatHostPort(e.host, e.port),
      )
      .join(','),
    allows: (host, port) => {
      const h = host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
      return entries.some((e) => e.host === h && (e.port === undefined || e.port === port));
    },
  };
}

/** Why a shard's servers are refused by `policy`; undefined when all are allowed (or no policy). */
export function refusedServers(
  policy: DbHostPolicy | undefined,
  shard: { master: { host: string; port: number }; replicas: readonly { host: string; port: number }[] },
): string | undefined {
  if (!policy) return undefined;
  const refused = [
    ...(policy.allows(shard.master.host, shard.master.port)
      ? []
      : [`master ${formatHostPort(shard.master.host, shard.master.port)}`]),
    ...shard.replicas
      .filter((r) => !policy.allows(r.host, r.port))
      .map((r) => `replica ${formatHostPort(r.host, r.port)}`),
  ];
  return refused.length === 0
    ? undefined
    : `${refused.join(', ')} not in SHARDGATE_DB_HOSTS (${policy.text})`;
}
