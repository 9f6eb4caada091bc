/**
 * `GET /v1/books?author=` against real MariaDB: the author column's collation decides what
 * matches (migrations/0005_book_author_collation.sql). Case and accents are ignored
 * (docs/http-api.md: `Kérnighan` finds `Kernighan`); characters outside the Basic Multilingual
 * Plane are told apart.
 * Under the database default, utf8mb4_unicode_ci, they all weighed the same: an outside check
 * asked for `🦄 Grin` and got `😀 Grin` and `🐉 Grin`, and `𠮷野` found `𩸽野`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, registerAndLogin } from './helpers/api.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('author');
const ids = new Map<string, string>();
/** the consistency token of the last write: the lists below see every book */
let consistency = '';

beforeAll(async () => {
  await createTenant(tenant, 'shard-2');
  const { token } = await registerAndLogin(tenant, 'lib@example.com');
  for (const author of ['😀 Grin', '🐉 Grin', '𠮷野', '𩸽野', 'Kernighan']) {
    const r = await api('POST', '/v1/books', {
      tenant,
      token,
      body: { isbn: '9780306406157', title: `A book by ${author}`, author, copies: 1 },
    });
    if (r.status !== 201) throw new Error(`POST /v1/books ${author}: ${r.status} ${r.text}`);
    ids.set(author, r.json.id);
    consistency = r.headers.get('X-Consistency-Token') ?? '';
  }
}, 60_000);

afterAll(() => removeTenant(tenant));

async function byAuthor(author: string): Promise<string[]> {
  const r = await api('GET', `/v1/books?author=${encodeURIComponent(author)}`, {
    tenant,
    headers: { 'X-Consistency-Token': consistency },
  });
  expect(r.status, r.text).toBe(200);
  return r.json.items.map((b: { author: string }) => b.author).sort();
}

describe('GET /v1/books?author=', () => {
  it('tells apart authors who differ only in characters outside the BMP (emoji, CJK Extension B)', async () => {
    expect(await byAuthor('🦄 Grin')).toEqual([]);
    expect(await byAuthor('😀 Grin')).toEqual(['😀 Grin']);
    expect(await byAuthor('🐉 Grin')).toEqual(['🐉 Grin']);
    expect(await byAuthor('𠮷野')).toEqual(['𠮷野']);
    expect(await byAuthor('𩸽野')).toEqual(['𩸽野']);
  });

  it('still ignores case and accents', async () => {
    expect(await byAuthor('kérnighan')).toEqual(['Kernighan']);
    expect(await byAuthor('KERNIGHAN')).toEqual(['Kernighan']);
  });
});
