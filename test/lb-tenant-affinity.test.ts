/**
 * Optional tenant affinity (issue "control plane" item 5): with the switch on, HAProxy balances
 * by `hdr(X-Tenant-ID)` with `hash-type consistent` — one tenant always lands on the same
 * instance — and a /v1 request without the header gets 400 problem+json instead of silently
 * falling back to round-robin. Runs a second HAProxy with the affinity config on spare ports,
 * in front of the stack's real API instances; the stack's own HAProxy is untouched.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localServers, renderHaproxyConfig } from '../stack/haproxy-config.js';
import { portOpen } from '../stack/probes.js';
import { topology } from '../stack/topology.js';
import { waitFor } from './helpers/wait-for.js';

const PORT = 8093;
const dir = mkdtempSync(join(tmpdir(), 'sg-affinity-'));
let haproxy: ChildProcess;

beforeAll(async () => {
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    renderHaproxyConfig({
      bindHost: topology.host,
      servers: localServers(),
      socketPath: join(dir, 'haproxy.sock'),
      tenantAffinity: true,
      port: PORT,
      statsPort: 8094,
    }),
  );
  haproxy = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
  await waitFor(() => portOpen(PORT), { timeoutMs: 5000, what: 'affinity HAProxy' });
  // health checks need a moment to mark both servers up
  await new Promise((r) => setTimeout(r, 2500));
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
});
