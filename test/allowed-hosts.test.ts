/**
 * `http/allowed_hosts` live from etcd against the stack's instances and HAProxy: a request whose
 * `Host` is not listed — a page that rebound its own DNS name to the API's address — gets 421
 * `host_not_allowed` on every path, through HAProxy and directly; listed names, IP addresses and
 * `localhost` are answered; HAProxy's health checks (HTTP/1.0, no `Host`) keep every server UP;
 * an invalid value is rejected, naming the key, while the last good one stays; the key's delete
 * answers every host again. Requests go through node:http, which sends the `Host` given.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCommand } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { HAPROXY, INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const KEY = 'http/allowed_hosts';
const REBOUND = 'rebound.attacker.example';
const tenant = uniqueTenantId('hosts');
let before: string | undefined;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** a request to `base` with `Host: host` (no `Host` at all when undefined: HTTP/1.0) */
function send(
  base: string,
  path: string,
  host: string | undefined,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: init.method ?? 'GET',
        setHost: false,
        headers: { ...(host === undefined ? {} : { Host: host }), ...init.headers },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

const hostsInForce = (list: string[]) =>
  configInForce(
    (a) =>
      JSON.stringify((a.http as { allowedHosts?: string[] } | undefined)?.allowedHosts) ===
      JSON.stringify(list),
    `${KEY} ${JSON.stringify(list)}`,
  );

/** a server's `show stat` row: status and the count of failed checks */
async function checkState(name: string): Promise<{ status: string; chkfail: number }> {
  const lines = (await haproxyCommand(HAPROXY_SOCKET, 'show stat')).split('\n');
  const header = lines[0]!.replace(/^# /, '').split(',');
  const row = lines.find((l) => l.startsWith(`${topology.haproxy.backend},${name},`))?.split(',') ?? [];
  const field = (h: string) => row[header.indexOf(h)] ?? '';
  return { status: field('status'), chkfail: Number(field('chkfail')) };
}

beforeAll(async () => {
  before = etcdGet(KEY);
  await createTenant(tenant, 'shard-1');
});

afterAll(async () => {
  if (before === undefined) etcdDel(KEY);
  else etcdPut(KEY, before);
  removeTenant(tenant);
});

describe('http/allowed_hosts (DNS rebinding)', () => {
  it('an unlisted Host gets 421 on every path, through HAProxy and at each instance; listed names, addresses and localhost are answered', async () => {
    etcdDel(KEY);
    await hostsInForce([]);
    // the default answers any host
    expect((await send(HAPROXY, '/health/config', `${REBOUND}:8080`)).status).toBe(200);

    etcdPut(KEY, 'api.shardgate.test, *.library.shardgate.test');
    await hostsInForce(['api.shardgate.test', '*.library.shardgate.test']);
    for (const base of [HAPROXY, ...INSTANCES]) {
      const port = new URL(base).port;
      const refused = await send(base, '/health/config', `${REBOUND}:${port}`);
      expect([base, refused.status, refused.headers['content-type']]).toEqual([
        base,
        421,
        'application/problem+json',
      ]);
      const problem = JSON.parse(refused.body) as { code: string; detail: string; requestId: string };
      expect(problem.code).toBe('host_not_allowed');
      expect(problem.detail).toBe(`this API does not answer to the host "${REBOUND}": it is not in ${KEY}`);
      expect(refused.headers['x-request-id']).toBe(problem.requestId);
      expect(refused.headers['x-served-by']).toBeTruthy();
      // the rebound page's anonymous write: refused before anything is written
      const write = await send(base, '/v1/members', `${REBOUND}:${port}`, {
        method: 'POST',
        headers: {
          Origin: `http://${REBOUND}:${port}`,
          'X-Tenant-ID': tenant,
          'Content-Type': 'application/json',
        },
        body: JSON.stringify({
          email: `rebound-${port}@example.org`,
          name: 'Rebound',
          password: 'a long password',
        }),
      });
      expect(write.status).toBe(421);
      expect((await send(base, '/metrics', REBOUND)).status).toBe(421);
      for (const host of [
        `api.shardgate.test:${port}`,
        'EU.Library.Shardgate.Test.',
        `127.0.0.1:${port}`,
        'localhost',
        `[::1]:${port}`,
      ])
        expect([base, host, (await send(base, '/health/ready', host)).status]).toEqual([base, host, 200]);
    }
    // the refused registrations wrote nothing: the addresses are still free
    for (const base of INSTANCES) {
      const port = new URL(base).port;
      const again = await send(base, '/v1/members', '127.0.0.1', {
        method: 'POST',
        headers: { 'X-Tenant-ID': tenant, 'Content-Type': 'application/json' },
        body: JSON.stringify({
          email: `rebound-${port}@example.org`,
          name: 'Rebound',
          password: 'a long password',
        }),
      });
      expect([base, again.status]).toEqual([base, 201]);
    }
  });

  it("HAProxy's health checks (no Host) keep every server UP under a list", async () => {
    etcdPut(KEY, 'api.shardgate.test');
    await hostsInForce(['api.shardgate.test']);
    const servers = topology.apis.map((a) => a.id);
    const first = await Promise.all(servers.map(checkState));
    // `check inter 1s`: three checks of each server under the list
    await new Promise((r) => setTimeout(r, 3500));
    const after = await Promise.all(servers.map(checkState));
    for (const [i, name] of servers.entries()) {
      expect([name, after[i]!.status]).toEqual([name, 'UP']);
      expect([name, after[i]!.chkfail]).toEqual([name, first[i]!.chkfail]);
    }
    // and requests by a listed name reach both instances
    const servedBy = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const r = await send(HAPROXY, '/health/ready', 'api.shardgate.test:8080');
      expect(r.status).toBe(200);
      servedBy.add(String(r.headers['x-served-by']));
    }
    expect(servedBy.size).toBe(servers.length);
  });

  it('an invalid value is rejected naming the key and the reason, the last good list stays; the delete answers every host again', async () => {
    etcdPut(KEY, 'api.shardgate.test');
    await hostsInForce(['api.shardgate.test']);
    etcdPut(KEY, 'https://api.shardgate.test:8080');
    for (const base of INSTANCES) {
      await waitFor(
        async () => {
          const body = (await (await fetch(`${base}/health/config`)).json()) as {
            rejected: { key: string; reason: string }[];
          };
          return body.rejected.some(
            (r) => r.key === KEY && r.reason.includes('is a URL: write the host name alone'),
          );
        },
        { timeoutMs: 2000, intervalMs: 20, what: `${KEY} rejected on ${base}` },
      );
      expect((await send(base, '/health/ready', REBOUND)).status).toBe(421);
      expect((await send(base, '/health/ready', 'api.shardgate.test')).status).toBe(200);
    }
    // `config apply` refuses such a value before it writes anything, naming the key and the reason
    const dir = mkdtempSync(join(tmpdir(), 'sg-hosts-'));
    const file = join(dir, 'config.yaml');
    expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
    const exported = readFileSync(file, 'utf8');
    expect(exported).toContain('allowed_hosts: https://api.shardgate.test:8080');
    writeFileSync(
      file,
      exported.replace(
        'allowed_hosts: https://api.shardgate.test:8080',
        'allowed_hosts: [api.shardgate.test:8080]',
      ),
    );
    const applied = ctl(['config', 'apply', '-f', file, '--force']);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain(
      `invalid /shardgate/${KEY}: "api.shardgate.test:8080" has a port: write the name alone (the port is not compared); nothing written`,
    );
    expect(etcdGet(KEY)).toBe('https://api.shardgate.test:8080');
    rmSync(dir, { recursive: true });

    etcdDel(KEY);
    await hostsInForce([]);
    for (const base of [HAPROXY, ...INSTANCES])
      expect((await send(base, '/health/ready', REBOUND)).status).toBe(200);
  });
});
