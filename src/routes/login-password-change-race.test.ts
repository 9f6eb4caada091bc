/**
 * A password change that commits while a login is verifying the password (domain/members.ts
 * `login`): the login is judged against the password in force after the change, so it never
 * answers 200 with a token the change has already revoked.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import type { DataAccess } from '../domain/data-access.js';
import { createMemoryServices } from '../testing/memory-services.js';

const OLD = 'correct horse';
const NEW = 'battery staple';

/** runs `during` (once) inside the next password check, after the stored hash was read */
class GatedHasher extends TestPasswordHasher {
  during: (() => Promise<void>) | undefined;
  override async verify(stored: string, password: string): Promise<boolean> {
    const during = this.during;
    this.during = undefined;
    await during?.();
    return super.verify(stored, password);
  }
}

/** `replicaLacksRowOnRead`: that read (1-based) is answered by a replica without the row */
function setup({ replicaLacksRowOnRead }: { replicaLacksRowOnRead?: number } = {}) {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const passwords = new GatedHasher();
  const inner = new MemoryDataAccess();
  let reads = 0;
  const data: DataAccess = {
    write: (tenant, fn, options) => inner.write(tenant, fn, options),
    admitWrite: (tenant) => inner.admitWrite(tenant),
    async read(tenant, options, fn) {
      const read = await inner.read(tenant, options, fn);
      reads++;
      return reads === replicaLacksRowOnRead ? { value: undefined as never, readFrom: 'replica' } : read;
    },
  };
  const app = createApp(createMemoryServices({ config, passwords, data }));
  const call = async (method: string, path: string, body?: unknown, token?: string) => {
    const res = await app.request(path, {
      method,
      headers: {
        'X-Tenant-ID': 'acme',
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const login = (password: string) => call('POST', '/v1/auth/login', { email: 'ann@example.com', password });
  return { passwords, call, login, reads: () => reads };
}

describe('a login racing a password change', () => {
  it('refuses the old password when the change commits while it is being verified', async () => {
    const { passwords, call, login } = setup();
    expect(
      (await call('POST', '/v1/members', { email: 'ann@example.com', name: 'Ann', password: OLD })).status,
    ).toBe(201);
    const first = await login(OLD);
    expect(first.status).toBe(200);
    let changed: number | undefined;
    passwords.during = async () => {
      const r = await call(
        'POST',
        '/v1/auth/change-password',
        { currentPassword: OLD, newPassword: NEW },
        first.json.token,
      );
      changed = r.status;
    };
    const racing = await login(OLD);
    expect(changed).toBe(204);
    // before: 200 with a token whose first use answered 401 token_revoked
    expect([racing.status, racing.json.code]).toEqual([401, 'invalid_credentials']);
    expect((await login(NEW)).status).toBe(200);
  });

  it('judges the new password by the row it read: refused when the change commits during that check', async () => {
    const { passwords, call, login } = setup();
    await call('POST', '/v1/members', { email: 'ann@example.com', name: 'Ann', password: OLD });
    const first = await login(OLD);
    // the login read the old row: a failed check is not read again (a second read only for
    // members who exist would tell them apart from unknown emails by its time)
    passwords.during = async () => {
      await call(
        'POST',
        '/v1/auth/change-password',
        { currentPassword: OLD, newPassword: NEW },
        first.json.token,
      );
    };
    const racing = await login(NEW);
    expect([racing.status, racing.json.code]).toEqual([401, 'invalid_credentials']);
  });

  it('issues a token that works when nothing changed meanwhile', async () => {
    const { call, login } = setup();
    await call('POST', '/v1/members', { email: 'ann@example.com', name: 'Ann', password: OLD });
    const r = await login(OLD);
    expect(r.status).toBe(200);
    expect((await call('GET', '/v1/members/me', undefined, r.json.token)).status).toBe(200);
  });

  it('lets the member in when the re-read is answered by a replica that lacks the row (it may lag)', async () => {
    const probe = setup();
    await probe.call('POST', '/v1/members', { email: 'ann@example.com', name: 'Ann', password: OLD });
    const before = probe.reads();
    expect((await probe.login(OLD)).status).toBe(200);
    // the login's reads: the member by email, then again by id right before the token
    expect(probe.reads() - before).toBe(2);

    const { call, login } = setup({ replicaLacksRowOnRead: before + 2 });
    await call('POST', '/v1/members', { email: 'ann@example.com', name: 'Ann', password: OLD });
    const r = await login(OLD);
    // before: 401 invalid_credentials for the right password
    expect(r.status).toBe(200);
    expect((await call('GET', '/v1/members/me', undefined, r.json.token)).status).toBe(200);
  });
});
