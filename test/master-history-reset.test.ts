/**
 * A shard master whose GTID history goes back (a DBA's RESET MASTER, the replica re-pointed at
 * the new history): the instances notice within seconds that the master's position went back,
 * clear the shard's read cache and restart its lag timeline.
 *
 * An outside check did this on shard-1 of the running stack (FTWRL on the master, the replica
 * waits for its position and stops, RESET MASTER on the master, then RESET MASTER and an empty
 * `gtid_slave_pos` on the replica before START SLAVE): new writes got sequence numbers from 1
 * again. The read cache keeps, per entry, the highest GTID per domain of the writes to it, so a
 * book cached before the reset kept answering `X-Cache: HIT` with its old title after a PATCH made
 * after it, even to the reader that sent the `X-Consistency-Token` of that PATCH: stale reads
 * until the sequence passed its old high, minutes later. And the replica stayed excluded with a
 * growing lag for ~4 minutes although it replicated fine: the lag timeline ignored master
 * positions lower than its last sample.
 *
 * Here, on a tenant of its own on shard-1, with the steps of that check: after the reset, a PATCH's
 * token read answers the new title on each instance within 10 s, a read without a token within
 * 10 s more (it may lag by `replication/max_lag_seconds`), and each instance admits the replica
 * again within 20 s of the reset and keeps it admitted. The replica is always left replicating.
 */
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { configInForce } from './helpers/live-config.js';
import { node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = 'shard-1';
const tenant = uniqueTenantId('histreset');
const masterPort = node(shard, 'master').port;
const replicaPort = node(shard, 'replica').port;
const [writer] = INSTANCES as [string, string];
/**
 * The sequence the master's domain must have reached before the reset, so that every position
 * written during the test after it (from 1 again) stays below the book's cached versions. The
 * stack's shard-1 may take ~10 writes a second from other clients: a test of under a minute after
 * the reset stays far below this.
 */
const SEQUENCE_FLOOR = 5000;
const SCRATCH_DB = 'histreset_scratch';

let token = '';
let bookPath = '';
let maxLagSeconds = 5;

async function one<T>(conn: Connection, sql: string, params: unknown[] = []): Promise<T> {
  const [rows] = await conn.query(sql, params);
  return (rows as T[])[0]!;
}

/** the sequence number of `domain` in a GTID position such as `0-11-8314,5-11-4` (0 when absent) */
function sequenceOf(position: string, domain: number): number {
  for (const gtid of position.split(',').filter(Boolean)) {
    const [d, , seq] = gtid.trim().split('-');
    if (Number(d) === domain) return Number(seq);
  }
  return 0;
}

/**
 * The master's own domain at SEQUENCE_FLOOR at least: when it is lower (a stack just started, or
 * this test run before), one harmless write in a scratch database carries that sequence number
 * (`gtid_seq_no`, as a GTID jump of any other client would), then the database is dropped.
 */
async function raiseSequence(): Promise<{ domain: number; before: number; after: number }> {
  const conn = await rootConnection(masterPort);
  try {
    const { domain, pos } = await one<{ domain: number; pos: string }>(
      conn,
      'SELECT @@global.gtid_domain_id AS domain, @@gtid_binlog_pos AS pos',
    );
    const before = sequenceOf(pos, Number(domain));
    if (before < SEQUENCE_FLOOR) {
      await conn.query(`CREATE DATABASE IF NOT EXISTS ${SCRATCH_DB}`);
      await conn.query(`CREATE TABLE IF NOT EXISTS ${SCRATCH_DB}.filler (id INT PRIMARY KEY AUTO_INCREMENT)`);
      await conn.query(`SET SESSION gtid_seq_no = ${SEQUENCE_FLOOR}`);
      await conn.query(`INSERT INTO ${SCRATCH_DB}.filler VALUES ()`);
      await conn.query(`DROP DATABASE ${SCRATCH_DB}`);
    }
    const now = await one<{ pos: string }>(conn, 'SELECT @@gtid_binlog_pos AS pos');
    return { domain: Number(domain), before, after: sequenceOf(now.pos, Number(domain)) };
  } finally {
    await conn.end();
  }
}

/**
 * The outside check's steps (its case 3). Whatever fails, the master's lock is released and the
 * replica replicates again at the end (re-pointed at the new history if the master was reset).
 */
async function resetHistory(): Promise<void> {
  const master = await rootConnection(masterPort);
  const replica = await rootConnection(replicaPort);
  let locked = false;
  let masterReset = false;
  let repointed = false;
  try {
    await master.query('FLUSH TABLES WITH READ LOCK');
    locked = true;
    const { pos } = await one<{ pos: string }>(master, 'SELECT @@gtid_binlog_pos AS pos');
    const { waited } = await one<{ waited: number }>(replica, 'SELECT MASTER_GTID_WAIT(?, 10) AS waited', [
      pos,
    ]);
    if (Number(waited) !== 0) throw new Error(`the replica did not reach the master's ${pos} within 10 s`);
    await replica.query('STOP SLAVE');
    try {
      await master.query('RESET MASTER');
    } catch {
      // as the outside check: where RESET MASTER is refused under the lock, right after it
      await master.query('UNLOCK TABLES');
      locked = false;
      await master.query('RESET MASTER');
    }
    masterReset = true;
    await master.query('UNLOCK TABLES');
    locked = false;
    await replica.query('RESET MASTER');
    await replica.query("SET GLOBAL gtid_slave_pos = ''");
    repointed = true;
    await replica.query('START SLAVE');
  } finally {
    if (locked) await master.query('UNLOCK TABLES').catch(() => {});
    if (masterReset && !repointed) {
      await replica.query('STOP SLAVE').catch(() => {});
      await replica.query('RESET MASTER').catch(() => {});
      await replica.query("SET GLOBAL gtid_slave_pos = ''").catch(() => {});
    }
    await replica.query('START SLAVE').catch(() => {});
    await master.end().catch(() => {});
    await replica.end().catch(() => {});
  }
}

interface Seen {
  base: string;
  status: number;
  title: unknown;
  cache: string | null;
  readFrom: string | null;
}

async function readBook(base: string, consistency?: string): Promise<Seen> {
  const r = await api('GET', bookPath, {
    tenant,
    base,
    headers: consistency ? { 'X-Consistency-Token': consistency } : {},
  });
  return {
    base,
    status: r.status,
    title: r.json?.title,
    cache: r.headers.get('X-Cache'),
    readFrom: r.headers.get('X-Read-From'),
  };
}

async function patchTitle(title: string): Promise<string> {
  const r = await api('PATCH', bookPath, { tenant, token, base: writer, body: { title } });
  if (r.status !== 200) throw new Error(`PATCH ${bookPath}: ${r.status} ${r.text}`);
  const consistency = r.headers.get('X-Consistency-Token');
  if (!consistency) throw new Error(`PATCH ${bookPath}: no X-Consistency-Token`);
  return consistency;
}

/** shard-1's replica as each instance routes it */
async function replicaStates(): Promise<{ base: string; state?: string; lagSeconds?: number | null }[]> {
  return Promise.all(
    INSTANCES.map(async (base) => {
      const body = (await (await fetch(`${base}/health/replication`)).json()) as {
        shards: { id: string; replicas: { node: string; state: string; lagSeconds: number | null }[] }[];
      };
      const replica = body.shards
        .find((s) => s.id === shard)
        ?.replicas.find((r) => r.node.startsWith(`127.0.0.1:${replicaPort}/`));
      return { base, state: replica?.state, lagSeconds: replica?.lagSeconds };
    }),
  );
}

const allAdmitted = (states: { state?: string }[]) => states.every((s) => s.state === 'admitted');

/** polls `probe` until `ok` or `ms` pass: its last value either way */
async function lastWithin<T>(
  ms: number,
  what: string,
  probe: () => Promise<T>,
  ok: (v: T) => boolean,
): Promise<T> {
  let last: T | undefined;
  let lastError: unknown;
  await waitFor(
    async () => {
      try {
        last = await probe();
      } catch (error) {
        lastError = error;
        return false;
      }
      return ok(last);
    },
    { timeoutMs: ms, intervalMs: 500, what },
  ).catch(() => {});
  if (last === undefined) throw new Error(`${what}: no answer (${String(lastError)})`);
  return last;
}

beforeAll(async () => {
  await createTenant(tenant, shard);
  token = (await registerAndLogin(tenant, 'librarian@example.com')).token;
  await configInForce((a) => a.cache.enabled, 'cache/enabled true');
  const config = (await (await fetch(`${writer}/health/config`)).json()) as {
    applied: { replication: { maxLagSeconds: number } };
  };
  maxLagSeconds = config.applied.replication.maxLagSeconds;

  const sequence = await raiseSequence();
  expect(sequence.after).toBeGreaterThanOrEqual(SEQUENCE_FLOOR);

  const created = await api('POST', '/v1/books', {
    tenant,
    token,
    base: writer,
    body: { isbn: '9780306406157', title: 'Before the reset 0', author: 'History', copies: 1 },
  });
  expect(created.status).toBe(201);
  bookPath = `/v1/books/${created.json.id}`;
  for (let i = 1; i <= 3; i++) await patchTitle(`Before the reset ${i}`);

  // cached: a second read through an instance is a HIT, which the other instance shares
  expect((await readBook(writer)).title).toBe('Before the reset 3');
  const hit = await waitFor(
    async () => {
      const seen = await readBook(writer);
      return seen.cache === 'HIT' ? seen : undefined;
    },
    { timeoutMs: 5000, what: 'a HIT of the book' },
  );
  expect(hit.title).toBe('Before the reset 3');
  for (const base of INSTANCES)
    expect(await readBook(base)).toMatchObject({ status: 200, title: 'Before the reset 3', cache: 'HIT' });

  // the replica is routable before, so that it being routable after means something
  await waitFor(async () => allAdmitted(await replicaStates()), {
    timeoutMs: 15_000,
    intervalMs: 250,
    what: `${shard}'s replica admitted on every instance before the reset`,
  });
});

afterAll(async () => {
  // never leave the replica stopped, whatever happened (resetHistory already restarts it)
  await rootQuery(replicaPort, 'START SLAVE').catch(() => {});
  removeTenant(tenant);
});

describe('a shard master whose GTID history goes back (RESET MASTER, replica re-pointed)', () => {
  it('serves no entry cached before the reset and admits the replica again within seconds', async () => {
    await resetHistory();
    const resetAt = Date.now();

    // the replica: admitted on every instance well after its lag would have passed the limit
    // (excluded for minutes before), and for 3 s in a row
    const replicaCheck = (async () => {
      const notBefore = resetAt + (maxLagSeconds + 3) * 1000;
      await new Promise((r) => setTimeout(r, Math.max(0, notBefore - Date.now())));
      const admitted = await lastWithin(
        Math.max(1000, resetAt + 20_000 - Date.now()),
        `${shard}'s replica admitted on every instance`,
        replicaStates,
        allAdmitted,
      );
      if (!allAdmitted(admitted)) return { afterMs: Date.now() - resetAt, states: admitted };
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 500));
        const states = await replicaStates();
        if (!allAdmitted(states)) return { afterMs: Date.now() - resetAt, states };
      }
      return { afterMs: Date.now() - resetAt, states: admitted };
    })().catch((error: unknown) => ({
      afterMs: Date.now() - resetAt,
      states: [{ base: 'none', state: `no answer: ${String(error)}` }],
    }));

    // a PATCH after the reset, read back with its token on each instance
    let n = 0;
    let title = '';
    const tokenReads = await lastWithin(
      10_000,
      'the token read of a PATCH after the reset',
      async () => {
        title = `After the reset ${++n}`;
        const consistency = await patchTitle(title);
        return { title, seen: await Promise.all(INSTANCES.map((base) => readBook(base, consistency))) };
      },
      (v) => v.seen.every((s) => s.status === 200 && s.title === v.title),
    );
    // without a token: the same title, once the replica's lag allows
    const tokenlessReads = await lastWithin(
      10_000,
      'a token-less read of the last PATCH',
      async () => ({ title, seen: await Promise.all(INSTANCES.map((base) => readBook(base))) }),
      (v) => v.seen.every((s) => s.status === 200 && s.title === v.title),
    );
    const replica = await replicaCheck;

    const expected = (wanted: string) =>
      INSTANCES.map((base) => expect.objectContaining({ base, status: 200, title: wanted }));
    expect({
      tokenReads: tokenReads.seen,
      tokenlessReads: tokenlessReads.seen,
      replicaStates: replica.states,
    }).toEqual({
      tokenReads: expected(tokenReads.title),
      tokenlessReads: expected(tokenlessReads.title),
      replicaStates: INSTANCES.map((base) => expect.objectContaining({ base, state: 'admitted' })),
    });
  });
});
