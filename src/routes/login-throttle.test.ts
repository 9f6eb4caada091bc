/**
 * Failed-login throttling on `POST /v1/auth/login` with the memory throttle (auth/login-throttle.ts):
 * 429 from the 11th attempt of an account without verifying the password, unknown emails count
 * alike, a success clears the count, other accounts and tenants are untouched.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { LOGIN_THROTTLE_POLICY, loginAccount } from '../auth/login-throttle.js';
import { MemoryLoginThrottle } from '../auth/memory-login-throttle.js';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import type { DataAccess } from '../domain/data-access.js';
import { type PasswordWork, PasswordWorkBusyError } from '../domain/password-hasher.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { oneShardConfig } from '../testing/one-shard-config.js';

const { maxFailures, windowMs } = LOGIN_THROTTLE_POLICY;
const PASSWORD = 'correct horse';

/** counts every password check, dummy ones included; `failNext` makes the next check throw */
class CountingHasher extends TestPasswordHasher {
  checks = 0;
  failNext = false;
  override async verify(stored: string, password: string): Promise<boolean> {
    this.checks++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('hasher broke');
    }
    return super.verify(stored, password);
  }
  override async verifyDummy(password: string): Promise<void> {
    this.checks++;
    return super.verifyDummy(password);
  }
}

/**
 * The memory data layer as the shard router behaves while the master does not answer (`down`):
 * a read `from: 'master'` fails, `master-else-replica` is answered by the replica.
 */
function masterOutage(inner: MemoryDataAccess) {
  /** replicaReads: the master answers, but `master-else-replica` reads are the replica's */
  const state = { down: false, replicaReads: false };
  const data: DataAccess = {
    write: (tenant, fn, options) => inner.write(tenant, fn, options),
    admitWrite: (tenant) => inner.admitWrite(tenant),
    async read(tenant, options, fn) {
      if (state.down && options.from === 'master')
        throw new DependencyUnavailableError('mysql-master:shard-1', 'ECONNREFUSED');
      const read = await inner.read(tenant, options, fn);
      return (state.down || state.replicaReads) && options.from !== 'master'
        ? { ...read, readFrom: 'replica' }
        : read;
    },
  };
  return { data, state };
}

/** password work turns (PasswordWork) that grant `grants` turns, then refuse as a busy gate */
function turns(grants = Number.POSITIVE_INFINITY) {
  const state = { grants, taken: 0 };
  const work: PasswordWork = {
    async run(_owner, fn) {
      state.taken++;
      if (state.grants <= 0) throw new PasswordWorkBusyError(2000);
      state.grants--;
      return fn();
    },
  };
  return { work, state };
}

function setup({ passwordWork }: { passwordWork?: PasswordWork } = {}) {
  const config = oneShardConfig({ 'tenants/globex': '{"shard":"shard-1","status":"active"}' });
  let now = 1_700_000_000_000;
  const throttle = new MemoryLoginThrottle({ now: () => now });
  const passwords = new CountingHasher();
  const outage = masterOutage(new MemoryDataAccess());
  const app = createApp(
    createMemoryServices({ config, passwords, passwordWork, loginThrottle: throttle, data: outage.data }),
  );
  const post = async (path: string, tenant: string, body: unknown, token?: string) => {
    const res = await app.request(path, {
      method: 'POST',
      headers: {
        'X-Tenant-ID': tenant,
        'Content-Type': 'application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { res, status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const register = (tenant: string, email: string) =>
    post('/v1/members', tenant, { email, name: email.split('@')[0], password: PASSWORD });
  const login = (tenant: string, email: string, password: string) =>
    post('/v1/auth/login', tenant, { email, password });
  const changePassword = (tenant: string, token: string, currentPassword: string, newPassword: string) =>
    post('/v1/auth/change-password', tenant, { currentPassword, newPassword }, token);
  return {
    app,
    outage: outage.state,
    throttle,
    changePassword,
    passwords,
    register,
    login,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('failed-login throttling (memory throttle)', () => {
  it('answers the 11th attempt 429 with Retry-After, without checking the password, the right one included', async () => {
    const { register, login, passwords } = setup();
    expect((await register('acme', 'ann@example.com')).status).toBe(201);
    for (let i = 1; i <= maxFailures; i++) {
      const r = await login('acme', 'ann@example.com', `wrong guess ${i}`);
      expect([i, r.status, r.json.code]).toEqual([i, 401, 'invalid_credentials']);
    }
    const checks = passwords.checks;
    const throttled = await login('acme', 'ann@example.com', 'wrong guess 11');
    expect(throttled.status).toBe(429);
    expect(throttled.res.headers.get('Content-Type')).toBe('application/problem+json');
    expect(throttled.json).toMatchObject({ status: 429, code: 'too_many_login_attempts' });
    expect(throttled.json.requestId).toBe(throttled.res.headers.get('X-Request-Id'));
    expect(Number(throttled.res.headers.get('Retry-After'))).toBe(windowMs / 1000);
    // the right password is refused alike while throttled: no oracle
    const right = await login('acme', 'ann@example.com', PASSWORD);
    expect(right.status).toBe(429);
    expect(passwords.checks).toBe(checks);
  });

  it('counts down Retry-After and admits again once the window has passed', async () => {
    const { register, login, advance } = setup();
    await register('acme', 'ann@example.com');
    for (let i = 0; i < maxFailures; i++) await login('acme', 'ann@example.com', 'wrong guess');
    advance(windowMs - 61_500);
    const late = await login('acme', 'ann@example.com', 'wrong guess');
    expect([late.status, late.res.headers.get('Retry-After')]).toEqual([429, '62']);
    advance(61_500);
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(200);
  });

  it('clears the count on a successful login', async () => {
    const { register, login, throttle } = setup();
    await register('acme', 'ann@example.com');
    for (let i = 0; i < maxFailures - 1; i++) {
      expect((await login('acme', 'ann@example.com', 'wrong guess')).status).toBe(401);
    }
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(200);
    expect(throttle.counted(loginAccount('acme', 'ann@example.com'))).toBe(0);
    for (let i = 0; i < maxFailures; i++) {
      expect((await login('acme', 'ann@example.com', 'wrong guess')).status).toBe(401);
    }
    expect((await login('acme', 'ann@example.com', 'wrong guess')).status).toBe(429);
  });

  it('counts an unknown email like a wrong password, with the same answers', async () => {
    const { register, login } = setup();
    await register('acme', 'ann@example.com');
    const known: { status: number; code: string }[] = [];
    const unknown: { status: number; code: string }[] = [];
    for (let i = 0; i <= maxFailures; i++) {
      const k = await login('acme', 'ann@example.com', 'wrong guess');
      const u = await login('acme', 'nobody@example.com', 'wrong guess');
      known.push({ status: k.status, code: k.json.code });
      unknown.push({ status: u.status, code: u.json.code });
      if (i === maxFailures) {
        expect(u.res.headers.get('Retry-After')).toBe(k.res.headers.get('Retry-After'));
        expect({ ...u.json, requestId: '' }).toEqual({ ...k.json, requestId: '' });
      }
    }
    expect(unknown).toEqual(known);
    expect(unknown.at(-1)).toEqual({ status: 429, code: 'too_many_login_attempts' });
  });

  it('throttles one account only: another email and the same email in another tenant still log in', async () => {
    const { register, login } = setup();
    await register('acme', 'ann@example.com');
    await register('acme', 'bob@example.com');
    await register('globex', 'ann@example.com');
    // the email is normalised: case and surrounding spaces name the same account
    for (let i = 0; i < maxFailures; i++)
      await login('acme', i % 2 ? 'ANN@example.com' : 'ann@example.com', 'x');
    expect((await login('acme', 'Ann@Example.com', PASSWORD)).status).toBe(429);
    expect((await login('acme', 'bob@example.com', 'wrong guess')).status).toBe(401);
    expect((await login('acme', 'bob@example.com', PASSWORD)).status).toBe(200);
    expect((await login('globex', 'ann@example.com', PASSWORD)).status).toBe(200);
  });

  it('lets through at most the limit of checks in a parallel burst', async () => {
    const { register, login, passwords } = setup();
    await register('acme', 'ann@example.com');
    const before = passwords.checks;
    const answers = await Promise.all(
      Array.from({ length: 3 * maxFailures }, (_, i) => login('acme', 'ann@example.com', `guess ${i}`)),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(maxFailures);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2 * maxFailures);
    expect(passwords.checks - before).toBe(maxFailures);
  });

  it('tells a burst of right passwords to retry in 1 s, not to wait out the window', async () => {
    const { register, login } = setup();
    await register('acme', 'ann@example.com');
    const answers = await Promise.all(
      Array.from({ length: 2 * maxFailures }, () => login('acme', 'ann@example.com', PASSWORD)),
    );
    const refused = answers.filter((a) => a.status === 429);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(maxFailures);
    expect(refused).toHaveLength(maxFailures);
    for (const r of refused) {
      expect(r.res.headers.get('Retry-After')).toBe('1');
      expect(r.json).toMatchObject({ code: 'too_many_login_attempts' });
      expect(r.json.detail).toBe('too many password checks of this account at once; try again in 1 s');
    }
    // nothing failed, so nothing to wait for
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(200);
  });

  it('does not count an attempt that ended without a verdict', async () => {
    const { register, login, passwords, throttle } = setup();
    await register('acme', 'ann@example.com');
    await login('acme', 'ann@example.com', 'wrong guess');
    passwords.failNext = true;
    expect((await login('acme', 'ann@example.com', 'wrong guess')).status).toBe(500);
    expect(throttle.counted(loginAccount('acme', 'ann@example.com'))).toBe(1);
  });

  it("counts a wrong password the replica's row refused when the master's check then gets no turn (503 server_busy), and then throttles", async () => {
    // a review: each guess's first check ran and said wrong, the second was refused a turn while
    // one tenant's registrations kept the turns busy, and the guess went uncounted
    const gate = turns();
    const { register, login, outage } = setup({ passwordWork: gate.work });
    expect((await register('acme', 'ann@example.com')).status).toBe(201);
    outage.replicaReads = true;
    for (let i = 0; i < maxFailures; i++) {
      gate.state.grants = 1; // the replica's check runs, the master's is refused
      const r = await login('acme', 'ann@example.com', `wrong guess ${i}`);
      expect([r.status, r.json.code]).toEqual([503, 'server_busy']);
    }
    gate.state.grants = Number.POSITIVE_INFINITY;
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(429);
  });

  it('checks both NFKC forms of a password in one turn (a refusal never falls between them)', async () => {
    const gate = turns();
    const { register, login } = setup({ passwordWork: gate.work });
    expect((await register('acme', 'ann@example.com')).status).toBe(201);
    const before = gate.state.taken;
    // full-width letters: NFKC changes it, so two checks, as typed and normalised
    const r = await login('acme', 'ann@example.com', 'ｗｒｏｎｇ ｇｕｅｓｓ');
    expect(r.status).toBe(401);
    expect(gate.state.taken - before).toBe(1);
  });

  it('counts a password a replica refused while the master does not answer (503), and then throttles', async () => {
    const { register, login, outage, throttle, passwords } = setup();
    await register('acme', 'ann@example.com');
    outage.down = true;
    // before: every wrong guess answered 503 uncounted, the right one 200: a password oracle
    for (let i = 0; i < maxFailures; i++)
      expect((await login('acme', 'ann@example.com', `guess ${i}`)).status).toBe(503);
    expect(throttle.counted(loginAccount('acme', 'ann@example.com'))).toBe(maxFailures);
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(429);
    // an unknown email is answered and counted alike (the replica's "no such address" is a
    // verdict, after a dummy check): before, 503 uncounted and without a check, which told it apart
    const checks = passwords.checks;
    for (let i = 0; i < maxFailures; i++)
      expect((await login('acme', 'nobody@example.com', `guess ${i}`)).status).toBe(503);
    expect(passwords.checks - checks).toBe(maxFailures);
    expect((await login('acme', 'nobody@example.com', 'guess')).status).toBe(429);
  });

  it('lets a member in whose password the replica confirms while the master does not answer', async () => {
    const { register, login, outage, throttle } = setup();
    await register('acme', 'ann@example.com');
    await login('acme', 'ann@example.com', 'wrong guess');
    outage.down = true;
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(200);
    expect(throttle.counted(loginAccount('acme', 'ann@example.com'))).toBe(0);
  });

  it('does not count a request the schema refuses', async () => {
    const { login, throttle } = setup();
    expect((await login('acme', 'not-an-email', 'x')).status).toBe(400);
    expect(throttle.counted(loginAccount('acme', 'not-an-email'))).toBe(0);
  });

  it('documents 429 with Retry-After on the login route', async () => {
    const { app } = setup();
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, { post: { responses: Record<string, { headers?: Record<string, unknown> }> } }>;
    };
    const responses = doc.paths['/v1/auth/login']!.post.responses;
    expect(Object.keys(responses['429']?.headers ?? {})).toContain('Retry-After');
  });

  it('counts wrong currentPassword guesses of a password change against the same account', async () => {
    const { register, login, changePassword, passwords } = setup();
    await register('acme', 'ann@example.com');
    const { token } = (await login('acme', 'ann@example.com', PASSWORD)).json;
    // half the budget spent on logins, the other half on a stolen token's guesses
    for (let i = 0; i < maxFailures / 2; i++) await login('acme', 'ann@example.com', `guess ${i}`);
    for (let i = 0; i < maxFailures / 2; i++)
      expect((await changePassword('acme', token, `guess ${i}`, 'a new password 1')).status).toBe(403);
    const before = passwords.checks;
    const throttled = await changePassword('acme', token, PASSWORD, 'a new password 1');
    expect(throttled.status).toBe(429);
    expect(throttled.json).toMatchObject({ code: 'too_many_login_attempts' });
    expect(Number(throttled.res.headers.get('Retry-After'))).toBeGreaterThan(0);
    expect(passwords.checks).toBe(before); // refused without checking the password
    expect((await login('acme', 'ann@example.com', PASSWORD)).status).toBe(429);
  });

  it('clears the count on a password change with the right currentPassword, and refuses the same password', async () => {
    const { register, login, changePassword } = setup();
    await register('acme', 'ann@example.com');
    const { token } = (await login('acme', 'ann@example.com', PASSWORD)).json;
    for (let i = 0; i < maxFailures - 1; i++) await login('acme', 'ann@example.com', `guess ${i}`);
    const same = await changePassword('acme', token, PASSWORD, PASSWORD);
    expect(same.status).toBe(400);
    expect(same.json.errors).toEqual([
      { field: 'body.newPassword', message: 'must differ from currentPassword' },
    ]);
    // the same password spelt otherwise (full-width letters, a decomposed accent) is hashed as the
    // same: refused too (an outside check got 204, every token revoked, and a mail)
    const wide = [...PASSWORD].map((ch) =>
      /[!-~]/.test(ch) ? String.fromCodePoint(ch.codePointAt(0)! + 0xfee0) : ch,
    );
    expect(wide.join('')).not.toBe(PASSWORD);
    expect(wide.join('').normalize('NFKC')).toBe(PASSWORD.normalize('NFKC'));
    const spelt = await changePassword('acme', token, PASSWORD, wide.join(''));
    expect(spelt.status).toBe(400);
    expect(spelt.json.errors).toEqual([
      { field: 'body.newPassword', message: 'must differ from currentPassword' },
    ]);
    const decomposed = await changePassword('acme', token, 'café1234', 'cafe\u03011234');
    expect(decomposed.status).toBe(400);
    expect((await changePassword('acme', token, PASSWORD, 'a new password 1')).status).toBe(204);
    for (let i = 0; i < maxFailures - 1; i++) await login('acme', 'ann@example.com', `guess ${i}`);
    expect((await login('acme', 'ann@example.com', 'a new password 1')).status).toBe(200);
  });
});
