/**
 * The unmeasured setup phase: tenants put into the etcd directory (as `etcdctl put` would), then
 * members and books created through the public API. Every tenant id starts with the run's tag,
 * so a rerun never meets the rows of an earlier one.
 */
import { randomBytes } from 'node:crypto';
import { sleep } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { etcdPut } from './etcd.js';
import type { Fixtures } from './scenarios.js';

export const PASSWORD = 'bench password 123';

export interface Member {
  id: string;
  email: string;
  token: string;
}

export interface TenantFixture {
  id: string;
  shard: string;
  members: Member[];
  books: string[];
}

/** `bench-<base36 time><hex>`: a tenant id prefix unique to this run */
export function runTag(): string {
  return `bench-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
}

export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export class ApiClient {
  constructor(
    private readonly base: string,
    private readonly instances: readonly string[],
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    { tenant, token, body }: { tenant: string; token?: string; body?: unknown },
  ): Promise<T> {
    const headers: Record<string, string> = { 'X-Tenant-ID': tenant };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status < 200 || res.status >= 300)
      throw new Error(
        `setup: ${method} ${path} (tenant ${tenant}) answered ${res.status}: ${text.slice(0, 300)}`,
      );
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Put the tenants into the directory and wait until every API instance serves all of them. */
  async createTenants(tenants: readonly { id: string; shard: string }[]): Promise<void> {
    await mapLimit(tenants, 8, (t) =>
      etcdPut(`tenants/${t.id}`, JSON.stringify({ shard: t.shard, status: 'active' })),
    );
    const deadline = Date.now() + 15_000;
    let missing = [...tenants];
    while (missing.length > 0) {
      const known = await mapLimit(missing, 16, async (t) => {
        for (const base of this.instances) {
          const res = await fetch(`${base}/v1/books?limit=1`, { headers: { 'X-Tenant-ID': t.id } });
          await res.arrayBuffer();
          if (res.status !== 200) return false;
        }
        return true;
      });
      missing = missing.filter((_, i) => !known[i]);
      if (missing.length === 0) break;
      if (Date.now() > deadline)
        throw new Error(
          `setup: ${missing.length} tenants (e.g. ${missing[0]!.id}) unknown to the API after 15 s`,
        );
      await sleep(200);
    }
  }

  async addMember(tenant: string, email: string): Promise<Member> {
    const member = await this.call<{ id: string }>('POST', '/v1/members', {
      tenant,
      body: { email, name: email.split('@')[0], password: PASSWORD },
    });
    const { token } = await this.call<{ token: string }>('POST', '/v1/auth/login', {
      tenant,
      body: { email, password: PASSWORD },
    });
    return { id: member.id, email, token };
  }

  async addBook(tenant: string, token: string, title: string, copies: number): Promise<string> {
    const book = await this.call<{ id: string }>('POST', '/v1/books', {
      tenant,
      token,
      body: { isbn: '9780131103627', title, author: 'Bench Author', copies },
    });
    return book.id;
  }

  /** A tenant with `members` members (the first, registered alone first, is its librarian) and `books` books. */
  async fixture(
    id: string,
    shard: string,
    { members = 1, books = 1, copies = 1000 }: { members?: number; books?: number; copies?: number } = {},
  ): Promise<TenantFixture> {
    const librarian = await this.addMember(id, `librarian@${id}.example`);
    const others = await Promise.all(
      Array.from({ length: members - 1 }, (_, i) => this.addMember(id, `member${i + 1}@${id}.example`)),
    );
    const bookIds: string[] = [];
    for (let i = 0; i < books; i++)
      bookIds.push(await this.addBook(id, librarian.token, `Bench book ${i}`, copies));
    return { id, shard, members: [librarian, ...others], books: bookIds };
  }
}

export const FIXTURE_COUNTS = { tenants: 110, members: 133, books: 233 };

/**
 * The fixtures of every scenario, spread evenly over the shards: a hot tenant (25 books, so a
 * page of 20 is full), an empty tenant for registrations, 8 lending tenants (4 members and one
 * book of 100,000 copies each) and 100 mixed-workload tenants (a librarian and 2 books each).
 */
export async function createFixtures(api: ApiClient, tag: string): Promise<Fixtures> {
  const shards = topology.shards.map((s) => s.id);
  const shardOf = (i: number) => shards[i % shards.length]!;
  const hotId = `${tag}-hot`;
  const registrations = `${tag}-reg`;
  const lenderIds = Array.from({ length: 8 }, (_, i) => ({ id: `${tag}-l${i}`, shard: shardOf(i) }));
  const mixedIds = Array.from({ length: 100 }, (_, i) => ({ id: `${tag}-m${i}`, shard: shardOf(i) }));
  await api.createTenants([
    { id: hotId, shard: shards[0]! },
    { id: registrations, shard: shardOf(1) },
    ...lenderIds,
    ...mixedIds,
  ]);
  const hot = await api.fixture(hotId, shards[0]!, { books: 25, copies: 5 });
  const lenders = await mapLimit(lenderIds, 4, (t) =>
    api.fixture(t.id, t.shard, { members: 4, books: 1, copies: 100_000 }),
  );
  const mixed = await mapLimit(mixedIds, 6, (t) => api.fixture(t.id, t.shard, { books: 2, copies: 1000 }));
  return { tag, hot, registrations, lenders, mixed };
}
