/**
 * A rolling change of SHARDGATE_JWT_SECRET against the real stack. The stack's instances keep
 * their secret (the "old" one: instances not yet restarted); two extra instances of this test, from
 * source, on free ports and with ids of their own, run the two phases of the change:
 * - `phase-b`: SHARDGATE_JWT_SECRET=new, SHARDGATE_JWT_SECRET_ACCEPTED=old (signs with the new);
 * - `phase-a`: SHARDGATE_JWT_SECRET=old, SHARDGATE_JWT_SECRET_ACCEPTED=new (still signs with the
 *   old, accepts the new: what every instance runs before the first one signs with the new).
 * Checked: a member token and a consistency token of a stack instance work on `phase-b`; a borrow
 * and a registration first sent to a stack instance and retried with their Idempotency-Key on
 * `phase-b` are replayed (one loan, one member), and one first sent to `phase-b` is replayed on
 * `phase-a`; failed logins counted by instances of both secrets make one budget; an accepted
 * secret equal to the secret, or too short, stops the API at start. Both instances are stopped
 * by SIGTERM at the end and their registrations are gone from etcd.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { loginAccount } from '../src/auth/login-throttle.js';
import { RedisLoginThrottle } from '../src/auth/redis-login-throttle.js';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { webCryptoDerivedMac } from '../src/crypto/derived-mac.js';
import { createLogger } from '../src/observability/logger.js';
import { createNoopMetrics } from '../src/observability/metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { jwtSecret, stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES } from './helpers/api.js';
import { etcdGet } from './helpers/etcd.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const OLD = jwtSecret();
const NEW = randomBytes(32).toString('base64url');
const tenant = uniqueTenantId('rotation');
const stack = INSTANCES[0]!;
const PASSWORD = 'correct horse battery';

interface Instance {
  id: string;
  base: string;
  stop(): Promise<void>;
}
const instances: Instance[] = [];
let phaseA: Instance;
let phaseB: Instance;

async function startInstance(label: string, secret: string, accepted: string): Promise<Instance> {
  const port = await freePort('127.0.0.1');
  const id = `rotation-${label}-${port}`;
  const started = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    SHARDGATE_INSTANCE_ID: id,
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_JWT_SECRET: secret,
    SHARDGATE_JWT_SECRET_ACCEPTED: accepted,
    SHARDGATE_DRAIN_MS: '0',
    LOG_LEVEL: 'silent',
  });
  const base = `http://127.0.0.1:${port}`;
  const instance: Instance = {
    id,
    base,
    async stop() {
      if (started.child.exitCode === null) {
        started.child.kill('SIGTERM');
        await started.exited();
      }
    },
  };
  instances.push(instance);
  await waitFor(
    async () => {
      if (started.child.exitCode !== null) throw new Error(`${id} exited: ${started.stderr()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `${id} ready` },
  );
  return instance;
}

/** registers `email` on `base` (the tenant's first member is its librarian) and logs in there */
async function member(email: string, base: string): Promise<string> {
  const registered = await api('POST', '/v1/members', {
    tenant,
    base,
    body: { email, name: 'N', password: PASSWORD },
  });
  expect(registered.status).toBe(201);
  const login = await api('POST', '/v1/auth/login', { tenant, base, body: { email, password: PASSWORD } });
  expect(login.status).toBe(200);
  return login.json.token as string;
}

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  [phaseB, phaseA] = await Promise.all([startInstance('b', NEW, OLD), startInstance('a', OLD, NEW)]);
  // an instance registers just after it is ready (instance-registration.ts; idempotency.ts gives a
  // new instance 10 s of grace for it): its registration is waited for, not expected at once (CI
  // read the key before the first write had landed)
  for (const { id } of [phaseA, phaseB]) {
    await waitFor(() => etcdGet(`instances/${id}`), {
      timeoutMs: 10_000,
      what: `instances/${id} registered`,
    });
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(instances.map((i) => i.stop()));
  stopStartedEntries();
  // stopped by SIGTERM, each removed its registration (else it lingers until its lease ends)
  for (const { id } of instances) expect(etcdGet(`instances/${id}`)).toBeUndefined();
  removeTenant(tenant);
});

describe('a rolling change of SHARDGATE_JWT_SECRET', () => {
  it('a member token, a consistency token and a retried borrow of a stack instance work on an instance of the new secret', async () => {
    const token = await member('lib@example.com', stack);
    const book = await api('POST', '/v1/books', {
      tenant,
      token,
      base: stack,
      body: { isbn: '9780306406157', title: 'Rotation', author: 'A', copies: 2 },
    });
    expect(book.status).toBe(201);
    // the member token, signed with the old secret
    const loans = await api('GET', '/v1/loans', { tenant, token, base: phaseB.base });
    expect(loans.status).toBe(200);
    // the consistency token, sealed under the old secret, on a read without a member token
    const consistency = book.headers.get('x-consistency-token')!;
    expect(consistency).toMatch(/^v2\./);
    const read = await api('GET', `/v1/books/${book.json.id}`, {
      tenant,
      base: phaseB.base,
      headers: { 'X-Consistency-Token': consistency },
    });
    expect([read.status, read.json.id]).toEqual([200, book.json.id]);
    // a borrow whose answer was lost, retried on the new instance: replayed, no second loan
    const borrow = {
      tenant,
      token,
      body: { bookId: book.json.id },
      headers: { 'Idempotency-Key': `borrow-${NEW.slice(0, 8)}` },
    };
    const first = await api('POST', '/v1/loans', { ...borrow, base: stack });
    expect(first.status).toBe(201);
    const retried = await api('POST', '/v1/loans', { ...borrow, base: phaseB.base });
    expect([retried.status, retried.text, retried.headers.get('idempotent-replayed')]).toEqual([
      201,
      first.text,
      'true',
    ]);
    // and the new instance's tokens are accepted by one of the first phase (which signs with the old)
    const newToken = (
      await api('POST', '/v1/auth/login', {
        tenant,
        base: phaseB.base,
        body: { email: 'lib@example.com', password: PASSWORD },
      })
    ).json.token as string;
    const mine = await api('GET', '/v1/loans', { tenant, token: newToken, base: phaseA.base });
    expect([mine.status, mine.json.items.length]).toEqual([200, 1]);
    const again = await api('POST', '/v1/loans', { ...borrow, token: newToken, base: phaseA.base });
    expect([again.status, again.text]).toEqual([201, first.text]);
    const after = await api('GET', '/v1/loans', { tenant, token, base: stack });
    expect(after.json.items).toHaveLength(1);
  });

  it('a retried registration is replayed, not 409 email_taken, across the change either way', async () => {
    for (const [label, from, to] of [
      ['stack-to-b', stack, phaseB.base],
      ['b-to-a', phaseB.base, phaseA.base],
    ] as const) {
      const body = { email: `${label}@example.com`, name: 'R', password: PASSWORD };
      const headers = { 'Idempotency-Key': `signup-${label}` };
      const first = await api('POST', '/v1/members', { tenant, base: from, body, headers });
      expect(first.status).toBe(201);
      const retried = await api('POST', '/v1/members', { tenant, base: to, body, headers });
      expect([retried.status, retried.text, retried.headers.get('idempotent-replayed')]).toEqual([
        201,
        first.text,
        'true',
      ]);
    }
  });

  it('failed logins counted under either secret make one budget per account', async () => {
    const email = 'throttled@example.com';
    await member(email, stack);
    const wrong = (base: string) =>
      api('POST', '/v1/auth/login', { tenant, base, body: { email, password: 'wrong password!' } });
    // 5 counted by a stack instance (old secret's key), 5 by the new secret's instance
    for (let i = 0; i < 5; i++) expect((await wrong(stack)).status).toBe(401);
    for (let i = 0; i < 5; i++) expect((await wrong(phaseB.base)).status).toBe(401);
    // the right password is refused on both kinds of instance of the change: 10 failures in all
    for (const base of [phaseB.base, phaseA.base]) {
      const right = await api('POST', '/v1/auth/login', {
        tenant,
        base,
        body: { email, password: PASSWORD },
      });
      expect([right.status, right.json.code]).toEqual([429, 'too_many_login_attempts']);
      expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(800);
    }
  });

  it('RedisLoginThrottle: a success clears the failures under both secrets; a refusal lasts until the sum falls below the maximum', async () => {
    const config = new MemoryConfigStore();
    const logger = createLogger({ level: 'silent' });
    const metrics = createNoopMetrics();
    const macOf = (secret: string) => webCryptoDerivedMac({ secret, label: 'shardgate/login-throttle/v1' });
    const policy = { maxFailures: 3, windowMs: 60_000, staleAttemptMs: 30_000 };
    const throttleOf = (secret: string, accepted: string) =>
      new RedisLoginThrottle({
        url: `redis://${topology.host}:${topology.redis.port}`,
        breakers: new BreakerRegistry({ config, logger, metrics }),
        logger,
        metrics,
        keyMac: macOf(secret),
        acceptedKeyMac: macOf(accepted),
        policy,
      });
    const [a, b] = [throttleOf(OLD, NEW), throttleOf(NEW, OLD)];
    try {
      await Promise.all([a.ready(), b.ready()]);
      const account = loginAccount(tenant, `spec-${NEW.slice(0, 6)}@example.com`);
      const fail = async (t: RedisLoginThrottle) => {
        const admission = await t.admit(account);
        if (!admission.admitted) throw new Error(`refused: ${admission.reason}`);
        await admission.attempt.settle('failed');
      };
      await fail(a);
      await fail(b);
      const success = await b.admit(account);
      expect(success.admitted).toBe(true);
      if (success.admitted) await success.attempt.settle('succeeded');
      // both counts cleared: two more failures leave room for a third attempt
      await fail(a);
      await fail(a);
      expect((await b.admit(account)).admitted).toBe(true);
      const other = loginAccount(tenant, `spec2-${NEW.slice(0, 6)}@example.com`);
      for (const t of [a, a, b]) {
        const admission = await t.admit(other);
        if (admission.admitted) await admission.attempt.settle('failed');
      }
      for (const t of [a, b]) {
        const refused = await t.admit(other);
        expect(refused).toMatchObject({ admitted: false, reason: 'failures' });
        if (!refused.admitted) expect(refused.retryAfterSeconds).toBeGreaterThan(50);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('an accepted secret equal to the secret, or shorter than 32 characters, stops the API at start', async () => {
    for (const [accepted, line] of [
      [OLD, 'must differ from SHARDGATE_JWT_SECRET'],
      ['short', 'must be at least 32 characters'],
    ] as const) {
      const entry = startEntry('src/entry/node.ts', {
        SHARDGATE_JWT_SECRET: OLD,
        SHARDGATE_JWT_SECRET_ACCEPTED: accepted,
      });
      expect(await entry.exited()).toBe(1);
      expect(entry.stderr()).toContain(
        `shardgate: invalid environment variable SHARDGATE_JWT_SECRET_ACCEPTED: ${line}`,
      );
      expect(entry.stderr()).not.toContain(OLD);
    }
  });
});
