/**
 * Optional tenant affinity (issue "control plane" item 5): with the switch on, HAProxy balances
 * by `hdr(X-Tenant-ID)` with `hash-type consistent` — one tenant always lands on the same
 * instance — and a /v1 request without the header gets 400 problem+json instead of silently
 * falling back to round-robin, except an OPTIONS (a CORS preflight carries no X-Tenant-ID). Runs a second HAProxy with the affinity config on spare ports,
 * in front of the stack's real API instances; the stack's own HAProxy is untouched.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { showServers } from '../control-plane/lb/haproxy-runtime.js';
import { localServers, renderHaproxyConfig } from '../stack/haproxy-config.js';
import { portOpen } from '../stack/probes.js';
import { topology } from '../stack/topology.js';
import { waitFor } from './helpers/wait-for.js';

let PORT = 0;
const dir = mkdtempSync(join(tmpdir(), 'sg-affinity-'));
let haproxy: ChildProcess;

beforeAll(async () => {
  PORT = await freePort(topology.host);
  const socketPath = join(dir, 'haproxy.sock');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    renderHaproxyConfig({
      bindHost: topology.host,
      servers: localServers(),
      socketPath,
      tenantAffinity: true,
      port: PORT,
      statsPort: await freePort(topology.host),
    }),
  );
  haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
  await waitFor(() => portOpen(PORT), { timeoutMs: 5000, what: 'affinity HAProxy' });
  // the port is this HAProxy's, not some other process's: it is still running
  expect(haproxy.exitCode, 'the affinity HAProxy exited (its bind failed?)').toBeNull();
  // both servers marked UP by their health checks (its own runtime socket)
  const servers = localServers().map((s) => s.name);
  await waitFor(
    async () => {
      const up = (await showServers(socketPath, topology.haproxy.backend)).filter((s) => s.running);
      return servers.every((name) => up.some((s) => s.name === name));
    },
    { timeoutMs: 10_000, intervalMs: 100, what: `${servers.join(', ')} UP on the affinity HAProxy` },
  );
});

afterAll(() => {
  haproxy?.kill('SIGKILL');
});

describe('tenant affinity switch', () => {
  it('sends every request of one tenant to the same instance, and spreads tenants', async () => {
    const servedBy = new Map<string, Set<string>>();
    for (let t = 0; t < 20; t++) {
      const tenant = `affinity-${t}`;
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`http://${topology.host}:${PORT}/v1/books`, {
          headers: { 'X-Tenant-ID': tenant },
        });
        await res.arrayBuffer();
        const set = servedBy.get(tenant) ?? new Set<string>();
        set.add(res.headers.get('X-Served-By') ?? '?');
        servedBy.set(tenant, set);
      }
    }
    for (const [tenant, set] of servedBy) expect(set.size, tenant).toBe(1);
    const used = new Set([...servedBy.values()].flatMap((s) => [...s]));
    expect(used.size).toBe(topology.apis.length);
  });

  it('rejects a /v1 request without X-Tenant-ID with 400 problem+json instead of round-robin', async () => {
    const res = await fetch(`http://${topology.host}:${PORT}/v1/books`);
    expect(res.status).toBe(400);
    expect(res.headers.get('Content-Type')).toBe('application/problem+json');
    expect(((await res.json()) as { code: string }).code).toBe('missing_tenant');
    expect((await fetch(`http://${topology.host}:${PORT}/health`)).status).toBe(200);
  });

  it('passes an OPTIONS without X-Tenant-ID to an instance: a browser sends its CORS preflight so', async () => {
    const res = await fetch(`http://${topology.host}:${PORT}/v1/books`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://library.example.org', 'Access-Control-Request-Method': 'POST' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('Allow')).toBe('GET, HEAD, OPTIONS, POST');
    expect(res.headers.get('X-Served-By')).toMatch(/^api-\d$/);
  });
});
