/**
 * An instance's registration (src/config/instance-registration.ts) against the local stack's
 * etcd, under a prefix of this test's own: a key an operator deletes while the instance runs is
 * put back (an outside check saw it stay away until the next config change, `status` listing the
 * instance as not registered while it served); a stopped instance's key stays gone.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { InstanceRegistration } from '../src/config/instance-registration.js';
import { silentLogger } from '../src/observability/logger.js';
import { topology } from '../stack/topology.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const PREFIX = `/shardgate-registration-test-${randomBytes(4).toString('hex')}/`;
const KEY = `${PREFIX}instances/reg-1`;
const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });

afterAll(async () => {
  await client.delete().prefix(PREFIX).exec();
  client.close();
});

const registered = async () => {
  const raw = await client.get(KEY).string();
  return raw === null ? undefined : (JSON.parse(raw) as { configRevision: number });
};

describe('an instance registration', () => {
  it('is put back when deleted while the instance runs, and stays gone once it stopped', async () => {
    const registration = new InstanceRegistration({
      client,
      prefix: PREFIX,
      instanceId: 'reg-1',
      url: 'http://127.0.0.1:1',
      logger: silentLogger,
    });
    try {
      registration.update(7);
      await waitFor(async () => (await registered())?.configRevision === 7, {
        timeoutMs: 3000,
        what: 'the registration',
      });
      for (let i = 0; i < 2; i++) {
        await client.delete().key(KEY).exec();
        await waitFor(async () => (await registered())?.configRevision === 7, {
          timeoutMs: 3000,
          what: `the registration put back after delete ${i + 1}`,
        });
      }
    } finally {
      await registration.stop();
    }
    expect(await registered()).toBeUndefined();
    await new Promise((r) => setTimeout(r, 500));
    expect(await registered()).toBeUndefined();
  });

  it('writes a burst of changes as a few writes of the latest, at least the interval apart', async () => {
    // every process watching the prefix reads each registration write: one per config change
    // made a burst of operator puts three watch events per process (an outside check)
    const key = `${PREFIX}instances/reg-3`;
    const puts: { revision: number }[] = [];
    const watcher = await client.watch().key(key).create();
    watcher.on('put', (kv) => {
      puts.push({ revision: JSON.parse(kv.value.toString()).configRevision });
    });
    const registration = new InstanceRegistration({
      client,
      prefix: PREFIX,
      instanceId: 'reg-3',
      url: 'http://127.0.0.1:1',
      logger: silentLogger,
      minIntervalMs: 200,
    });
    try {
      const started = performance.now();
      // 60 revisions over ~600 ms, as a burst of puts applied one by one
      for (let revision = 1; revision <= 60; revision++) {
        registration.update(revision);
        await new Promise((r) => setTimeout(r, 10));
      }
      const burst = performance.now() - started;
      await waitFor(() => puts.at(-1)?.revision === 60, { timeoutMs: 3000, what: 'the latest revision' });
      await new Promise((r) => setTimeout(r, 400));
      // one write per interval begun, and the first at once: at most burst / 200 ms + 2
      expect(puts.length).toBeGreaterThanOrEqual(2);
      expect(puts.length).toBeLessThanOrEqual(Math.ceil(burst / 200) + 2);
      expect(puts.map((p) => p.revision)).toEqual([...puts.map((p) => p.revision)].sort((a, b) => a - b));
      expect(puts.at(-1)?.revision).toBe(60);
    } finally {
      await registration.stop();
      await watcher.cancel();
    }
  });

  it('stops while etcd is unreachable: its watch of the key is not waited for', async () => {
    // a review: stop() waited for a watch that settles only once etcd answers, past the 15 s
    // shutdown deadline of an instance
    const port = await freePort(topology.host);
    const unreachable = createEtcdClient({ endpoints: [`http://${topology.host}:${port}`], retries: 0 });
    const registration = new InstanceRegistration({
      client: unreachable,
      prefix: PREFIX,
      instanceId: 'reg-2',
      url: 'http://127.0.0.1:1',
      logger: silentLogger,
    });
    try {
      registration.update(1);
      await new Promise((r) => setTimeout(r, 300));
      const outcome = await Promise.race([
        registration.stop().then(() => 'stopped'),
        new Promise((r) => setTimeout(() => r('still stopping after 10 s'), 10_000)),
      ]);
      expect(outcome).toBe('stopped');
    } finally {
      unreachable.close();
    }
  }, 20_000);
});
