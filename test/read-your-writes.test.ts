/**
 * Issue "data path", Done-when 3: with the replica's SQL thread stopped, a write then a read with
 * its consistency token returns the new data from the master (`X-Read-From: master`), on another
 * instance than the one that wrote; without the token the read is served by the replica; once the
 * lag passes `replication/max_lag_seconds`, token-less reads move to the master too, and return
 * to the replica after it caught up.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_DIR } from '../stack/paths.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { scrapeMetric } from './helpers/metrics.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = 'shard-1';
const tenant = uniqueTenantId('ryw');
const MAX_LAG_SECONDS = 2;
const replicaPort = node(shard, 'replica').port;
const [writer, reader] = INSTANCES as [string, string];
const restores: (() => void)[] = [];

async function readFromEverywhere(path: string): Promise<string[]> {
  const answers = await Promise.all(INSTANCES.map((base) => api('GET', path, { tenant, base })));
  return answers.map((a) => a.headers.get('X-Read-From') ?? `status ${a.status}`);
}

beforeAll(async () => {
  await createTenant(tenant, shard);
  restores.push(etcdOverride('replication/max_lag_seconds', String(MAX_LAG_SECONDS)));
  restores.push(etcdOverride('replication/ryw_timeout_ms', '200'));
  // this test watches where reads are routed: keep the read cache out of the way
  restores.push(etcdOverride('cache/enabled', 'false'));
  await configInForce(
    (a) =>
      !a.cache.enabled &&
      a.replication.maxLagSeconds === MAX_LAG_SECONDS &&
      a.replication.rywTimeoutMs === 200,
    `cache/enabled false, replication/max_lag_seconds ${MAX_LAG_SECONDS}, replication/ryw_timeout_ms 200`,
  );
});

afterAll(async () => {
  // never leave the replica stopped, whatever happened
  await rootQuery(replicaPort, 'START SLAVE SQL_THREAD').catch(() => {});
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
});

describe('read-your-writes with a stopped replica', () => {
  it('serves token reads from the master, token-less reads from the replica until it lags too far', async () => {
    const { token } = await registerAndLogin(tenant, 'librarian@example.com');
    // both instances read from the replica while replication runs
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      what: 'both instances reading from the replica',
    });

    await rootQuery(replicaPort, 'STOP SLAVE SQL_THREAD');
    const created = await api('POST', '/v1/books', {
      tenant,
      base: writer,
      token,
      body: { isbn: '0306406152', title: 'Written while the replica sleeps', author: 'RYW', copies: 1 },
    });
    expect(created.status).toBe(201);
    const writtenAt = Date.now();
    const consistency = created.headers.get('X-Consistency-Token');
    expect(consistency).toBeTruthy();
    const path = `/v1/books/${created.json.id}`;

    // with the token, on the other instance: the new data, from the master, and counted so
    const tokenReadsFromMaster = () =>
      scrapeMetric(reader, 'shardgate_db_reads_total', {
        shard,
        wanted: 'replica_at_position',
        served: 'master',
      });
    const before = await tokenReadsFromMaster();
    const withToken = await api('GET', path, {
      tenant,
      base: reader,
      headers: { 'X-Consistency-Token': consistency! },
    });
    expect(withToken.status).toBe(200);
    expect(withToken.json.title).toBe('Written while the replica sleeps');
    expect(withToken.headers.get('X-Read-From')).toBe('master');
    expect(await tokenReadsFromMaster()).toBeGreaterThanOrEqual(before + 1);

    // without it: still the replica (which does not have the book yet)
    const without = await api('GET', path, { tenant, base: reader });
    expect(without.headers.get('X-Read-From')).toBe('replica');
    expect(without.status).toBe(404);

    // once the lag passes max_lag_seconds, token-less reads move to the master
    await waitFor(async () => (await readFromEverywhere(path)).every((r) => r === 'master'), {
      timeoutMs: (MAX_LAG_SECONDS + 5) * 1000,
      intervalMs: 100,
      what: 'token-less reads moving to the master',
    });
    expect(Date.now() - writtenAt).toBeGreaterThanOrEqual(MAX_LAG_SECONDS * 1000 - 1100);
    const fromMaster = await api('GET', path, { tenant, base: reader });
    expect(fromMaster.status).toBe(200);

    // caught up → back to the replica, which now has the book
    await rootQuery(replicaPort, 'START SLAVE SQL_THREAD');
    await waitFor(async () => (await readFromEverywhere(path)).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'reads returning to the replica',
    });
    const back = await api('GET', path, { tenant, base: reader });
    expect(back.status).toBe(200);
    expect(back.headers.get('X-Read-From')).toBe('replica');
  });

  it('does not hold a read on a frozen replica much past ryw_timeout_ms, with a token or without: it reads the master', async () => {
    // a tenant of its own on the same shard, whose first member is its librarian
    const own = uniqueTenantId('ryw-frozen');
    await createTenant(own, shard);
    restores.push(() => removeTenant(own));
    const { token } = await registerAndLogin(own, 'frozen@example.com');
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      what: 'both instances reading from the replica',
    });
    // a write the replica applies before it freezes: its token read needs no wait there
    const before = await api('POST', '/v1/books', {
      tenant: own,
      base: writer,
      token,
      body: { isbn: '0306406152', title: 'Written before the freeze', author: 'RYW', copies: 1 },
    });
    expect(before.status).toBe(201);
    // the router learns the replica's position from its probe, once a second
    await new Promise((r) => setTimeout(r, 1500));
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${shard}-replica.pid`), 'utf8'));
    process.kill(pid, 'SIGSTOP');
    try {
      // a read without a token or any floor (a member's loans) leaves the frozen replica as soon:
      // from the master, well before the breaker's call timeout (it took those 2 s before)
      const started = Date.now();
      const loans = await api('GET', '/v1/loans', { tenant: own, base: reader, token });
      expect([loans.status, loans.headers.get('X-Read-From')]).toEqual([200, 'master']);
      expect(Date.now() - started).toBeLessThan(1500);
      // the book a write made, read back with its token on the other instance: from the master,
      // and well before the replica breaker's call timeout (2 s; ryw_timeout_ms is 200)
      const readBack = async (written: Awaited<ReturnType<typeof api>>, title: string) => {
        const started = Date.now();
        const read = await api('GET', `/v1/books/${written.json.id}`, {
          tenant: own,
          base: reader,
          headers: { 'X-Consistency-Token': written.headers.get('X-Consistency-Token')! },
        });
        expect([read.status, read.json.title, read.headers.get('X-Read-From')]).toEqual([
          200,
          title,
          'master',
        ]);
        expect(Date.now() - started).toBeLessThan(1500);
      };
      // the replica had applied it: the read goes there without a wait and finds it frozen
      await readBack(before, 'Written before the freeze');
      // right away, while the replica is still admitted: the read waits on it for the token
      const created = await api('POST', '/v1/books', {
        tenant: own,
        base: writer,
        token,
        body: { isbn: '0306406152', title: 'Written while the replica is frozen', author: 'RYW', copies: 1 },
      });
      expect(created.status).toBe(201);
      await readBack(created, 'Written while the replica is frozen');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: 'reads back on the thawed replica',
    });
  });

  it("a refused write's token shows what the refusal saw: the loan that holds the last copy, from the master", async () => {
    const own = uniqueTenantId('ryw-refused');
    await createTenant(own, shard);
    restores.push(() => removeTenant(own));
    const { token } = await registerAndLogin(own, 'refused@example.com');
    // the replica stays admitted however long this takes: a read goes to the master only for a token
    const restoreLag = etcdOverride('replication/max_lag_seconds', '3600');
    await configInForce((a) => a.replication.maxLagSeconds === 3600, 'replication/max_lag_seconds 3600');
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      what: 'both instances reading from the replica',
    });
    const book = await api('POST', '/v1/books', {
      tenant: own,
      base: writer,
      token,
      body: { isbn: '0306406152', title: 'One copy', author: 'RYW', copies: 1 },
    });
    expect(book.status).toBe(201);
    const path = `/v1/books/${book.json.id}`;
    // the replica has the book, one copy free; then it stops before the loan
    await waitFor(
      async () => {
        const r = await api('GET', path, { tenant: own, base: reader });
        return r.status === 200 && r.headers.get('X-Read-From') === 'replica';
      },
      { timeoutMs: 10_000, what: 'the replica serving the new book' },
    );
    await rootQuery(replicaPort, 'STOP SLAVE SQL_THREAD');
    try {
      const lent = await api('POST', '/v1/loans', {
        tenant: own,
        base: writer,
        token,
        body: { bookId: book.json.id },
      });
      expect(lent.status).toBe(201);
      const refused = await api('POST', '/v1/loans', {
        tenant: own,
        base: reader,
        token,
        body: { bookId: book.json.id },
      });
      expect([refused.status, refused.json.code]).toEqual([409, 'no_copy_available']);
      const refusedToken = refused.headers.get('X-Consistency-Token');
      expect(refusedToken).toBeTruthy();
      const withToken = await api('GET', path, {
        tenant: own,
        base: reader,
        headers: { 'X-Consistency-Token': refusedToken! },
      });
      expect([withToken.status, withToken.json.available, withToken.headers.get('X-Read-From')]).toEqual([
        200,
        0,
        'master',
      ]);
      // without it: the replica, which has the book but not the loan (so would a token that
      // lacked the loan: the refusal's position must hold what the refusal saw)
      const without = await api('GET', path, { tenant: own, base: reader });
      expect([without.status, without.json.available, without.headers.get('X-Read-From')]).toEqual([
        200,
        1,
        'replica',
      ]);
    } finally {
      await rootQuery(replicaPort, 'START SLAVE SQL_THREAD');
      restoreLag();
    }
    await configInForce(
      (a) => a.replication.maxLagSeconds === MAX_LAG_SECONDS,
      `replication/max_lag_seconds ${MAX_LAG_SECONDS}`,
    );
  });

  it('a password change revokes older member tokens at once on every instance, even while the replica lags', async () => {
    const own = uniqueTenantId('ryw-revoke');
    await createTenant(own, shard);
    restores.push(() => removeTenant(own));
    const password = 'correct horse battery';
    const { token: old } = await registerAndLogin(own, 'revoke@example.com', { password });
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      what: 'both instances reading from the replica',
    });
    await rootQuery(replicaPort, 'STOP SLAVE SQL_THREAD');
    try {
      const changed = await api('POST', '/v1/auth/change-password', {
        tenant: own,
        base: writer,
        token: old,
        body: { currentPassword: password, newPassword: 'a brand new passphrase' },
      });
      expect(changed.status).toBe(204);
      // no content, so no type (src/entry/no-content-response.ts), also through HAProxy
      expect(changed.headers.get('Content-Type')).toBeNull();
      // the replica still has the old password version; the old token must not pass anywhere
      for (const base of INSTANCES) {
        for (const path of ['/v1/loans', '/v1/members/me']) {
          const r = await api('GET', path, { tenant: own, base, token: old });
          expect([base, path, r.status, r.json?.code]).toEqual([base, path, 401, 'token_revoked']);
        }
      }
      const login = await api('POST', '/v1/auth/login', {
        tenant: own,
        base: reader,
        body: { email: 'revoke@example.com', password: 'a brand new passphrase' },
      });
      expect(login.status).toBe(200);
      const loans = await api('GET', '/v1/loans', { tenant: own, base: reader, token: login.json.token });
      expect(loans.status).toBe(200);
    } finally {
      await rootQuery(replicaPort, 'START SLAVE SQL_THREAD');
    }
  });

  it('a token is sealed (v2, no GTID, shard or tenant readable in it) and bound to its tenant: another tenant of the shard gets no floor from it, an altered one is a 400', async () => {
    const a = uniqueTenantId('ryw-sealed-a');
    const b = uniqueTenantId('ryw-sealed-b');
    await createTenant(a, shard);
    restores.push(() => removeTenant(a));
    await createTenant(b, shard);
    restores.push(() => removeTenant(b));
    const { token } = await registerAndLogin(a, 'sealed@example.com');
    // the replica stays admitted however long this takes: a read goes to the master only for a floor
    const restoreLag = etcdOverride('replication/max_lag_seconds', '3600');
    await configInForce((c) => c.replication.maxLagSeconds === 3600, 'replication/max_lag_seconds 3600');
    await waitFor(async () => (await readFromEverywhere('/v1/books?limit=1')).every((r) => r === 'replica'), {
      timeoutMs: 10_000,
      what: 'both instances reading from the replica',
    });
    const masterPort = node(shard, 'master').port;
    const binlogPos = async () =>
      String((await rootQuery(masterPort, 'SELECT @@gtid_binlog_pos AS p'))[0]!.p)
        .split(',')
        .filter(Boolean)
        .map((g) => g.split('-').map(BigInt) as [bigint, bigint, bigint]);
    await rootQuery(replicaPort, 'STOP SLAVE SQL_THREAD');
    try {
      const before = await binlogPos();
      const created = await api('POST', '/v1/books', {
        tenant: a,
        base: writer,
        token,
        body: { isbn: '0306406152', title: 'Sealed', author: 'RYW', copies: 1 },
      });
      expect(created.status).toBe(201);
      const after = await binlogPos();
      const sealed = created.headers.get('X-Consistency-Token')!;
      expect(sealed).toMatch(/^v2\.[A-Za-z0-9_-]+$/);
      // every GTID the master wrote around the write (the write's is one of them), the shard and
      // the tenant: none in the bytes of any part of the token
      const secrets = [shard, a, '"g"', '"t"'];
      for (const [domain, server, seq] of after) {
        const from = before.find(([d]) => d === domain)?.[2] ?? 0n;
        expect(seq - from).toBeLessThan(1000n);
        for (let n = from + 1n; n <= seq; n++) secrets.push(`${domain}-${server}-${n}`);
      }
      expect(secrets.length).toBeGreaterThan(4);
      for (const part of sealed.split('.')) {
        const text = Buffer.from(part, 'base64url').toString('latin1');
        for (const secret of secrets) expect(text).not.toContain(secret);
      }
      const path = `/v1/books/${created.json.id}`;
      // its own tenant: a floor the stopped replica lacks, so the master answers
      const own = await api('GET', path, {
        tenant: a,
        base: reader,
        headers: { 'X-Consistency-Token': sealed },
      });
      expect([own.status, own.headers.get('X-Read-From')]).toEqual([200, 'master']);
      // another tenant of the same shard: no 400 and no floor (the replica answers, as without a token)
      for (const base of INSTANCES) {
        const foreign = await api('GET', '/v1/books', {
          tenant: b,
          base,
          headers: { 'X-Consistency-Token': sealed },
        });
        expect([
          base,
          foreign.status,
          foreign.headers.get('X-Shard'),
          foreign.headers.get('X-Read-From'),
        ]).toEqual([base, 200, shard, 'replica']);
        expect(foreign.json.items).toEqual([]);
      }
      // one byte of the sealed part altered (a character in the middle: all its bits are data)
      const body = sealed.slice(3);
      const i = Math.floor(body.length / 2);
      const altered = `v2.${body.slice(0, i)}${body[i] === 'A' ? 'B' : 'A'}${body.slice(i + 1)}`;
      for (const tenantId of [a, b]) {
        const refused = await api('GET', path, {
          tenant: tenantId,
          headers: { 'X-Consistency-Token': altered },
        });
        expect([refused.status, refused.json.code]).toEqual([400, 'invalid_consistency_token']);
      }
    } finally {
      await rootQuery(replicaPort, 'START SLAVE SQL_THREAD');
      restoreLag();
    }
    await configInForce(
      (c) => c.replication.maxLagSeconds === MAX_LAG_SECONDS,
      `replication/max_lag_seconds ${MAX_LAG_SECONDS}`,
    );
  });

  it('rejects a forged token with 400; a token of another shard is no floor (a tenant that moved keeps reading)', async () => {
    const forged = await api('GET', '/v1/books', {
      tenant,
      headers: { 'X-Consistency-Token': 'v1.e30.AAAA' },
    });
    expect(forged.status).toBe(400);
    expect(forged.json.code).toBe('invalid_consistency_token');
    const other = uniqueTenantId('ryw-other');
    await createTenant(other, 'shard-2');
    try {
      const { registered } = await registerAndLogin(other, 'x@example.com');
      const foreign = registered.headers.get('X-Consistency-Token')!;
      const mismatch = await api('GET', '/v1/books', { tenant, headers: { 'X-Consistency-Token': foreign } });
      expect(mismatch.status).toBe(200);
      expect(mismatch.headers.get('X-Shard')).toBe('shard-1');
      expect(mismatch.headers.get('X-Read-From')).toBe('replica');
    } finally {
      removeTenant(other);
    }
  });
});
