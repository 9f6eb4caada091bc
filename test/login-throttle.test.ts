/**
 * Failed-login throttling against the real stack (auth/redis-login-throttle.ts): one count per
 * account in Redis :6380, shared by both API instances.
 * - 10 wrong logins spread over api-1 and api-2 answer 401; the 11th 429 `too_many_login_attempts`
 *   with Retry-After, on either instance and through HAProxy, the right password included;
 * - another email of the same tenant still logs in; an unknown email is throttled alike;
 * - wrong `currentPassword`s of password changes count against the same account as logins;
 * - Redis holds one expiring counter per throttled account, under a MAC, never the email;
 * - Redis frozen (SIGSTOP): logins fail open — a throttled account logs in — and only the few
 *   before the `redis` breaker opened wait for its call timeout; after SIGCONT the count is back;
 *   the instance logs one warning for the freeze and, once Redis answers, that it is back;
 * - a burst of logins with the right password is told to retry in 1 s, never the window's 900 s;
 * - RedisLoginThrottle follows the rules every throttle does (testing/login-throttle-spec.ts),
 *   against this Redis and its clock.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LoginThrottlePolicy, loginAccount } from '../src/auth/login-throttle.js';
import { RedisLoginThrottle } from '../src/auth/redis-login-throttle.js';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { webCryptoDerivedMac } from '../src/crypto/derived-mac.js';
import { createLogger } from '../src/observability/logger.js';
import { createNoopMetrics } from '../src/observability/metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { describeLoginThrottle } from '../src/testing/login-throttle-spec.js';
import { LOG_DIR, STATE_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { type ApiAnswer, api, HAPROXY, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { breakerSettingsInForce } from './helpers/live-config.js';
import { scrapeMetric } from './helpers/metrics.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

/** LOGIN_THROTTLE_POLICY: 10 failures within 15 minutes */
const MAX_FAILURES = 10;
const WINDOW_SECONDS = 15 * 60;
const PASSWORD = 'correct horse battery';

const tenant = uniqueTenantId('thr');
const redis = new Redis(`redis://${topology.host}:${topology.redis.port}`, { lazyConnect: true });
const restores: (() => void)[] = [];

const login = (email: string, password: string, base: string) =>
  api('POST', '/v1/auth/login', { tenant, base, body: { email, password } });

const unthrottled = (base: string) =>
  scrapeMetric(base, 'shardgate_login_throttle_decisions_total', { decision: 'unthrottled' });

function expectThrottled(r: ApiAnswer, where: string): void {
  expect([where, r.status, r.json?.code]).toEqual([where, 429, 'too_many_login_attempts']);
  expect(r.headers.get('Content-Type'), where).toBe('application/problem+json');
  const retryAfter = Number(r.headers.get('Retry-After'));
  expect(retryAfter, where).toBeGreaterThanOrEqual(1);
  expect(retryAfter, where).toBeLessThanOrEqual(WINDOW_SECONDS);
}

beforeAll(async () => {
  await redis.connect();
  await createTenant(tenant, 'shard-1');
  await registerAndLogin(tenant, 'victim@example.com', { password: PASSWORD });
  await registerAndLogin(tenant, 'bystander@example.com', { password: PASSWORD });
});
afterAll(async () => {
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
  const keys = await redis.keys(`sg:{${tenant}}:_login:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe('failed-login throttling', () => {
  it('answers the 11th failed login of an account 429 on both instances, the right password too', async () => {
    for (let i = 1; i <= MAX_FAILURES; i++) {
      const base = INSTANCES[i % INSTANCES.length]!;
      const r = await login('victim@example.com', `wrong guess ${i}`, base);
      expect([i, base, r.status, r.json?.code]).toEqual([i, base, 401, 'invalid_credentials']);
    }
    for (const base of INSTANCES)
      expectThrottled(await login('victim@example.com', 'wrong guess', base), base);
    // no oracle: the right password is refused alike while the account is throttled
    for (const base of [...INSTANCES, HAPROXY])
      expectThrottled(await login('VICTIM@example.com', PASSWORD, base), `${base} right password`);

    // another account of the same tenant is not affected
    expect((await login('bystander@example.com', 'wrong guess', INSTANCES[0]!)).status).toBe(401);
    expect((await login('bystander@example.com', PASSWORD, INSTANCES[1]!)).status).toBe(200);
  });

  it('throttles an unknown email alike, and stores no email in Redis', async () => {
    for (let i = 1; i <= MAX_FAILURES; i++) {
      const r = await login('nobody@example.com', 'wrong guess', INSTANCES[i % INSTANCES.length]!);
      expect([i, r.status, r.json?.code]).toEqual([i, 401, 'invalid_credentials']);
    }
    expectThrottled(await login('nobody@example.com', 'wrong guess', HAPROXY), 'unknown email');

    // victim and nobody are counted; the bystander's success cleared its count
    const keys = await redis.keys(`sg:{${tenant}}:_login:*`);
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key).toMatch(/^sg:\{t-thr-[0-9a-f]+\}:_login:h:[0-9a-f]{32}$/);
      expect(key).not.toMatch(/victim|nobody|example/);
      // the window's failures; no attempt left in flight
      expect(await redis.hgetall(key)).toEqual({ f: String(MAX_FAILURES) });
      const ttl = await redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(WINDOW_SECONDS * 1000);
    }
  });

  it('counts the wrong currentPassword of password changes with a stolen token against the same account', async () => {
    const { token } = await registerAndLogin(tenant, 'stolen@example.com', { password: PASSWORD });
    const change = (currentPassword: string, base: string) =>
      api('POST', '/v1/auth/change-password', {
        tenant,
        base,
        token,
        body: { currentPassword, newPassword: 'a brand new password' },
      });
    for (let i = 1; i <= MAX_FAILURES; i++) {
      const base = INSTANCES[i % INSTANCES.length]!;
      const r = await change(`wrong guess ${i}`, base);
      expect([i, base, r.status, r.json?.code]).toEqual([i, base, 403, 'wrong_current_password']);
    }
    for (const base of INSTANCES) expectThrottled(await change(PASSWORD, base), `${base} change-password`);
    // one account: its logins are throttled too, and the password was not changed
    expectThrottled(await login('stolen@example.com', PASSWORD, HAPROXY), 'login after the guesses');
  });

  it('tells a burst of logins with the right password to retry in 1 s, not to wait out the window', async () => {
    await registerAndLogin(tenant, 'burst@example.com', { password: PASSWORD });
    // more at once than the budget, over both instances: the first 10 admitted are still being
    // checked (argon2) when the others ask
    const answers = await Promise.all(
      Array.from({ length: 3 * MAX_FAILURES }, (_, i) =>
        login('burst@example.com', PASSWORD, INSTANCES[i % INSTANCES.length]!),
      ),
    );
    const refused = answers.filter((a) => a.status !== 200);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect([r.status, r.json?.code, r.headers.get('Retry-After')]).toEqual([
        429,
        'too_many_login_attempts',
        '1',
      ]);
    }
    // nothing failed: the account logs in at once
    expect((await login('burst@example.com', PASSWORD, HAPROXY)).status).toBe(200);
  });

  it("takes over an earlier version's counter as that many failures, with its expiry", async () => {
    const before = new Set(await redis.keys(`sg:{${tenant}}:_login:*`));
    expect((await login('upgraded@example.com', 'wrong guess', HAPROXY)).status).toBe(401);
    const [key] = (await redis.keys(`sg:{${tenant}}:_login:*`)).filter((k) => !before.has(k));
    expect(key).toMatch(/:_login:h:/);
    // as a version before the hash left it: a string counter of 10 at the key without `h:`
    const legacy = key!.replace(':_login:h:', ':_login:');
    await redis.del(key!);
    await redis.set(legacy, String(MAX_FAILURES), 'PX', 60_000);
    const r = await login('upgraded@example.com', PASSWORD, HAPROXY);
    expectThrottled(r, 'after the upgrade');
    expect(Number(r.headers.get('Retry-After'))).toBeLessThanOrEqual(60);
    expect(await redis.exists(legacy)).toBe(0);
    expect(await redis.hgetall(key!)).toEqual({ f: String(MAX_FAILURES) });
    expect(await redis.pttl(key!)).toBeLessThanOrEqual(60_000);
  });

  it('fails open while Redis is frozen: a throttled account logs in, at once once the breaker is open', async () => {
    const CALL_TIMEOUT = 500;
    const THRESHOLD = 3;
    restores.push(etcdOverride('breakers/redis/call_timeout_ms', String(CALL_TIMEOUT)));
    restores.push(etcdOverride('breakers/redis/failure_threshold', String(THRESHOLD)));
    restores.push(etcdOverride('breakers/redis/reset_timeout_ms', '1000'));
    await breakerSettingsInForce('redis', {
      call_timeout_ms: CALL_TIMEOUT,
      failure_threshold: THRESHOLD,
      reset_timeout_ms: 1000,
    });
    const [one] = INSTANCES as [string];
    await registerAndLogin(tenant, 'frozen@example.com', { password: PASSWORD, base: one });
    for (let i = 0; i < MAX_FAILURES; i++) await login('frozen@example.com', 'wrong guess', one);
    expectThrottled(await login('frozen@example.com', PASSWORD, one), 'before the freeze');

    const before = await unthrottled(one);
    const log = join(LOG_DIR, `${topology.apis[0]!.id}.log`);
    const logFrom = statSync(log).size;
    const logSince = (msg: string) =>
      readFileSync(log)
        .subarray(logFrom)
        .toString('utf8')
        .split('\n')
        .filter((l) => l.includes(msg));
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.redis.name}.pid`), 'utf8'));
    const answers: { status: number; ms: number }[] = [];
    process.kill(pid, 'SIGSTOP');
    try {
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await login('frozen@example.com', PASSWORD, one);
        answers.push({ status: r.status, ms: performance.now() - t0 });
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect((await unthrottled(one)) - before).toBe(answers.length);
    // only the logins before the breaker opened wait for the call timeout (one of slack for the host)
    expect(answers.filter((a) => a.ms >= CALL_TIMEOUT).length).toBeLessThanOrEqual(THRESHOLD + 1);
    // the count survived the freeze: the account is throttled again once Redis answers
    await waitFor(async () => (await login('frozen@example.com', PASSWORD, one)).status === 429, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the throttle back after SIGCONT',
    });
    await waitFor(() => logSince('login throttle available again').length > 0, {
      timeoutMs: 5000,
      what: "api-1's log saying the throttle is back",
    });
    // one warning for the whole freeze, not one per login (WarnLimiter)
    expect(logSince('login throttle unavailable')).toHaveLength(1);
  });
});

/** A RedisLoginThrottle of this test on the stack's Redis, with breakers of `config` */
function throttleOnStackRedis(config: MemoryConfigStore, policy: LoginThrottlePolicy): RedisLoginThrottle {
  const logger = createLogger({ level: 'silent' });
  const metrics = createNoopMetrics();
  return new RedisLoginThrottle({
    url: `redis://${topology.host}:${topology.redis.port}`,
    breakers: new BreakerRegistry({ config, logger, metrics }),
    logger,
    metrics,
    keyMac: webCryptoDerivedMac({ secret: 'spec-secret-spec-secret-spec-secret-01', label: 'spec' }),
    policy,
  });
}

describe('RedisLoginThrottle and a connection Redis closed', () => {
  it('counts a login sent while the connection is being made again, instead of letting it through', async () => {
    // an outside check with Redis' `timeout 1` (idle connections closed by the server): every
    // login in the ~100 ms until the reconnect failed open, 15 password checks of 20 wrong guesses
    const config = new MemoryConfigStore();
    const throttle = throttleOnStackRedis(config, { maxFailures: 2, windowMs: 60_000, staleAttemptMs: 5000 });
    const closedTenant = `${tenant}-cl`;
    const own = (throttle as unknown as { redis: Redis }).redis;
    try {
      await throttle.ready();
      const account = loginAccount(closedTenant, 'guess@example.com');
      const outcomes: boolean[] = [];
      for (let i = 0; i < 3; i++) {
        const id = await own.client('ID');
        const closed = new Promise((r) => own.once('close', r));
        await redis.client('KILL', 'ID', String(id));
        await closed;
        const admission = await throttle.admit(account);
        outcomes.push(admission.admitted);
        if (admission.admitted) await admission.attempt.settle('failed');
      }
      // two wrong guesses counted, the third refused: none went through uncounted
      expect(outcomes).toEqual([true, true, false]);
    } finally {
      await throttle.close();
      const keys = await redis.keys(`sg:{${closedTenant}}:_login:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });
});

describe('RedisLoginThrottle and a frozen Redis', () => {
  it('leaves no attempt of an admission it gave up on: after the freeze the account has no failures', async () => {
    // an outside check: accounts that only ever sent the right password were locked for the
    // window after two 10 s Redis freezes. Each admission given up on at the call timeout still
    // ran when Redis resumed, recording an attempt nothing settled, a failure once stale.
    const CALL_TIMEOUT = 200;
    const STALE_MS = 1000;
    const config = new MemoryConfigStore({
      initial: {
        // the breaker stays closed: every admission is sent, and given up on
        'breakers/redis/call_timeout_ms': String(CALL_TIMEOUT),
        'breakers/redis/failure_threshold': '1000',
      },
    });
    const throttle = throttleOnStackRedis(config, {
      maxFailures: MAX_FAILURES,
      windowMs: 60_000,
      staleAttemptMs: STALE_MS,
    });
    const frozenTenant = `${tenant}-fz`;
    try {
      await throttle.ready();
      const account = loginAccount(frozenTenant, 'right@example.com');
      const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.redis.name}.pid`), 'utf8'));
      let givenUp = 0;
      process.kill(pid, 'SIGSTOP');
      try {
        for (let i = 0; i < 6; i++) {
          const t0 = performance.now();
          const admission = await throttle.admit(account);
          expect(admission.admitted).toBe(true);
          if (performance.now() - t0 >= CALL_TIMEOUT - 20) givenUp++;
          // the login succeeded (the right password): a settle of an uncounted attempt does nothing
          if (admission.admitted) await admission.attempt.settle('succeeded');
        }
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      // the first ones wait the call timeout; once a command of the connection has timed out
      // with nothing answered, the connection is replaced (src/cache/replace-hung-connection.ts)
      // and the later ones fail at once while the new one waits for the frozen Redis
      expect(givenUp).toBeGreaterThanOrEqual(1);
      // Redis runs what waited in its socket; then every attempt it recorded would be stale
      await new Promise((r) => setTimeout(r, STALE_MS + 500));
      const keys = await redis.keys(`sg:{${frozenTenant}}:_login:h:*`);
      const fields = keys.length === 0 ? {} : await redis.hgetall(keys[0]!);
      expect(fields).toEqual({});
      // and the account is not one failure nearer its limit: 9 wrong passwords, then the right one
      for (let i = 0; i < MAX_FAILURES - 1; i++) {
        const a = await throttle.admit(account);
        expect(a.admitted, `wrong password ${i + 1}`).toBe(true);
        if (a.admitted) await a.attempt.settle('failed');
      }
      expect((await throttle.admit(account)).admitted).toBe(true);
    } finally {
      await throttle.close();
      const keys = await redis.keys(`sg:{${frozenTenant}}:_login:*`);
      if (keys.length > 0) await redis.del(...keys);
    }
  });
});

describeLoginThrottle('RedisLoginThrottle', {
  make: async (policy) => {
    const throttle = throttleOnStackRedis(new MemoryConfigStore(), policy);
    await throttle.ready();
    return throttle;
  },
  advance: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
});
