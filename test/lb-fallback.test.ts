/**
 * The fallback backend (control-plane/lb/haproxy-runtime.ts fallbackBackend) against the stack's
 * real HAProxy and lb sync daemon: with no usable server in the main backend, requests go to the
 * same instances through the fallback instead of a 503 (an outside check: a busy survivor was
 * marked DOWN by a 1 s check with its peer gone, and every request got 503 for seconds); and the
 * etcd weights reach the fallback's servers too (lb sync, and the instances' agent-check), so a
 * drain by weight holds there.
 *
 * Both main servers are put in maintenance by hand (as failed checks would take them out) and
 * set ready again in `finally`; `lb/weights/api-2` is put back as it was found.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyCommand } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { HAPROXY } from './helpers/api.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const backend = topology.haproxy.backend;
const fallback = `${backend}_fallback`;
const api2 = topology.apis[1]!;
const weightKey = `lb/weights/${api2.id}`;
const savedWeight = etcdGet(weightKey);

/** `uweight` of each server of a backend, parsed here */
async function weights(of: string): Promise<Map<string, number>> {
  const text = await haproxyCommand(HAPROXY_SOCKET, `show servers state ${of}`);
  const rows = text
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === of);
  return new Map(rows.map((f) => [f[3]!, Number(f[7])]));
}

afterAll(async () => {
  if (savedWeight === undefined) {
    if (etcdGet(weightKey) !== undefined) etcdDel(weightKey);
  } else etcdPut(weightKey, savedWeight);
});

describe('HAProxy fallback backend', () => {
  it('serves through the same instances when the main backend has no usable server', async () => {
    const before = await fetch(`${HAPROXY}/health`);
    expect(before.status).toBe(200);
    try {
      for (const api of topology.apis) {
        expect(
          (await haproxyCommand(HAPROXY_SOCKET, `set server ${backend}/${api.id} state maint`)).trim(),
        ).toBe('');
      }
      const served = new Set<string>();
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${HAPROXY}/health`);
        await r.arrayBuffer();
        expect(r.status).toBe(200);
        served.add(r.headers.get('X-Served-By') ?? '');
      }
      // round-robin over the fallback's servers, both instances being up
      expect([...served].sort()).toEqual(topology.apis.map((a) => a.id).sort());
    } finally {
      for (const api of topology.apis)
        await haproxyCommand(HAPROXY_SOCKET, `set server ${backend}/${api.id} state ready`);
    }
  });

  it("gives the fallback's servers the etcd weights, as the main backend's", async () => {
    etcdPut(weightKey, '3');
    await waitFor(async () => (await weights(fallback)).get(api2.id) === 3, {
      timeoutMs: 5000,
      what: `${fallback}/${api2.id} at weight 3`,
    });
    etcdPut(weightKey, '0');
    await waitFor(async () => (await weights(fallback)).get(api2.id) === 0, {
      timeoutMs: 5000,
      what: `${fallback}/${api2.id} drained by weight 0`,
    });
    // and the drain holds when the fallback serves: every answer from the other instance
    try {
      for (const api of topology.apis)
        await haproxyCommand(HAPROXY_SOCKET, `set server ${backend}/${api.id} state maint`);
      const served: string[] = [];
      for (let i = 0; i < 6; i++) {
        const r = await fetch(`${HAPROXY}/health`);
        await r.arrayBuffer();
        expect(r.status).toBe(200);
        served.push(r.headers.get('X-Served-By') ?? '');
      }
      expect(new Set(served)).toEqual(new Set([topology.apis[0]!.id]));
    } finally {
      for (const api of topology.apis)
        await haproxyCommand(HAPROXY_SOCKET, `set server ${backend}/${api.id} state ready`);
    }
  });
});
