/**
 * A shard whose servers run with `NO_BACKSLASH_ESCAPES` in their global `sql_mode` (a setting a
 * DBA may choose). mysql2 escapes a value's quote with a backslash in the SQL text it sends; such
 * a server reads the backslash as a character and the quote as the end of the string. An outside
 * check sent `GET /v1/books?author=x') UNION ALL SELECT … FROM members -- x` without a token and got
 * every tenant's member emails and password hashes back as books. Every connection now sets its
 * session's `sql_mode` (src/db/session-sql-mode.ts).
 *
 * An instance of this code is started from source against the local stack after both servers of
 * shard-1 took the mode, so its pools open their connections under it. The global mode is put
 * back after the file, whatever happens.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { stackEnv } from '../stack/stack-env.js';
import { api, registerAndLogin } from './helpers/api.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const victim = uniqueTenantId('nbe-victim');
const attacker = uniqueTenantId('nbe-attacker');
const servers = [node('shard-1', 'master'), node('shard-1', 'replica')];
/** each server's global sql_mode before the test */
const before = new Map<number, string>();
let base = '';
let api3: ReturnType<typeof startEntry>;
/** registered through the stack before the mode is set: the data an injection would reach */
let victimMember: Awaited<ReturnType<typeof registerAndLogin>>;
let librarian: Awaited<ReturnType<typeof registerAndLogin>>;

async function globalMode(port: number): Promise<string> {
  const [row] = await rootQuery<{ m: string }>(port, 'SELECT @@GLOBAL.sql_mode AS m');
  return row!.m;
}

beforeAll(async () => {
  await createTenant(victim, 'shard-1');
  await createTenant(attacker, 'shard-1');
  victimMember = await registerAndLogin(victim, 'secret-holder@example.com');
  librarian = await registerAndLogin(attacker, 'lib@example.com');
  for (const s of servers) {
    const mode = await globalMode(s.port);
    before.set(s.port, mode);
    await rootQuery(s.port, 'SET GLOBAL sql_mode = ?', [
      [mode, 'NO_BACKSLASH_ESCAPES'].filter(Boolean).join(','),
    ]);
  }
  const port = await freePort('127.0.0.1');
  base = `http://127.0.0.1:${port}`;
  api3 = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    PORT: String(port),
    SHARDGATE_INSTANCE_ID: `sql-mode-${process.pid}`,
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
  });
  await waitFor(
    async () => {
      if (api3.child.exitCode !== null) throw new Error(`exited ${api3.child.exitCode}: ${api3.stderr()}`);
      const r = await api('GET', '/v1/books?limit=1', { tenant: victim, base }).catch(() => undefined);
      return r?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the extra instance serving the tenant' },
  );
}, 60_000);

afterAll(async () => {
  for (const [port, mode] of before) await rootQuery(port, 'SET GLOBAL sql_mode = ?', [mode]);
  if (api3?.child.exitCode === null) {
    api3.child.kill('SIGTERM');
    await Promise.race([api3.exited(), new Promise((r) => setTimeout(r, 8_000))]);
  }
  stopStartedEntries();
  removeTenant(victim);
  removeTenant(attacker);
}, 20_000);

describe('a shard whose sql_mode has NO_BACKSLASH_ESCAPES', () => {
  it('took the mode globally (the premise of this file)', async () => {
    for (const s of servers) expect(await globalMode(s.port)).toContain('NO_BACKSLASH_ESCAPES');
  });

  it('gives no other tenant rows to a quote in a query value, and keeps quotes and backslashes as written', async () => {
    const injection =
      "x') UNION ALL SELECT tenant_id, id, email, name, password_hash, 0, 0, created_at, updated_at FROM members -- x";
    const probe = await api('GET', `/v1/books?author=${encodeURIComponent(injection)}`, {
      tenant: attacker,
      base,
    });
    // before: 200 with the members of every tenant on shard-1 as "books"
    expect(probe.text).not.toContain(victimMember.member.email);
    expect([probe.status, probe.json.items]).toEqual([200, []]);

    // a value with quotes and backslashes is stored and read back as sent (before: a 500, the
    // statement cut at the quote)
    const title = `O'Brien's \\ "Guide" \\' '' \\\\`;
    const author = "Flann O'Brien\\";
    const created = await api('POST', '/v1/books', {
      tenant: attacker,
      token: librarian.token,
      base,
      body: { isbn: '9780306406157', title, author, copies: 1 },
    });
    expect([created.status, created.json.title, created.json.author]).toEqual([201, title, author]);
    const token = created.headers.get('X-Consistency-Token') ?? '';
    const read = await api('GET', `/v1/books/${created.json.id}`, {
      tenant: attacker,
      base,
      headers: { 'X-Consistency-Token': token },
    });
    expect([read.status, read.json.title, read.json.author]).toEqual([200, title, author]);
    const byAuthor = await api('GET', `/v1/books?author=${encodeURIComponent(author)}`, {
      tenant: attacker,
      base,
      headers: { 'X-Consistency-Token': token },
    });
    expect(byAuthor.json.items.map((b: { id: string }) => b.id)).toEqual([created.json.id]);
  });
});
