/**
 * An API instance frozen (SIGSTOP) and resumed, from source against the local stack.
 *
 * A write whose client has gone is not done (routes/caller-bound-writes.ts). An outside check
 * froze an API instance (SIGSTOP) under load: HAProxy answered 504 to the writes it held, and when
 * the instance resumed it ran each of them anyway: 17 of 17 were applied.
 *
 * Here an instance of this code, started from source against the local stack, is frozen with
 * requests queued in its socket buffers: one whose client then closes its connection (as HAProxy
 * does after `timeout server`), one whose client waits. On SIGCONT the waiting one is served and
 * the closed one writes nothing: no loan, no receipt in the outbox, its copy still free.
 *
 * The writes an instance had in flight when it froze are not blamed on the master
 * (resilience/circuit-breaker.ts STALL_MS): on SIGCONT their timers had all run out, they timed
 * out before their answers (in the socket buffers since the freeze) were read, and the master's
 * breaker opened: an outside check counted 642 requests answered 503 in the 5 s after a resume.
 * One more of them, whose client closes its connection during the freeze, is rolled back before
 * its COMMIT on resume (db/sql-data-access.ts).
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { stackEnv } from '../stack/stack-env.js';
import { api, registerAndLogin } from './helpers/api.js';
import { node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('caller-gone');
const master = node('shard-1', 'master');
let base = '';
let port = 0;
let api3: ReturnType<typeof startEntry>;
/** the tenant's librarian (its first member), who may add books */
let token = '';

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  port = await freePort('127.0.0.1');
  base = `http://127.0.0.1:${port}`;
  api3 = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    PORT: String(port),
    SHARDGATE_INSTANCE_ID: `caller-gone-${process.pid}`,
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
  });
  await waitFor(
    async () => {
      if (api3.child.exitCode !== null) throw new Error(`exited ${api3.child.exitCode}: ${api3.stderr()}`);
      const r = await api('GET', '/v1/books?limit=1', { tenant, base }).catch(() => undefined);
      return r?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the extra instance serving the tenant' },
  );
  token = (await registerAndLogin(tenant, 'lib@example.com', { base })).token;
}, 60_000);

afterAll(async () => {
  // SIGTERM: the instance deregisters from etcd (instances/<id>) before it exits
  if (api3?.child.exitCode === null) {
    api3.child.kill('SIGCONT');
    api3.child.kill('SIGTERM');
    await Promise.race([api3.exited(), new Promise((r) => setTimeout(r, 8_000))]);
  }
  stopStartedEntries();
  removeTenant(tenant);
}, 15_000);

/** a borrow as raw bytes, so the test decides when its connection closes */
function borrowRequest(token: string, bookId: string): string {
  const body = JSON.stringify({ bookId });
  return [
    'POST /v1/loans HTTP/1.1',
    'Host: shardgate',
    `X-Tenant-ID: ${tenant}`,
    `Authorization: Bearer ${token}`,
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

function opened(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** the status line's code of the first answer on `socket` */
function statusOf(socket: Socket): Promise<number> {
  return new Promise((resolve, reject) => {
    let data = '';
    socket.setTimeout(20_000, () => socket.destroy(new Error('no answer within 20 s')));
    socket.on('data', (d) => {
      data += String(d);
      const line = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (line) resolve(Number(line[1]));
    });
    socket.once('error', reject);
  });
}

async function loansOf(bookId: string): Promise<number> {
  const rows = await rootQuery<{ n: number }>(
    master.port,
    'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ? AND book_id = ?',
    [tenant, bookId],
  );
  return Number(rows[0]?.n);
}

/** a book of the tenant, added through the extra instance */
async function newBook(title: string, copies: number): Promise<string> {
  const book = await api('POST', '/v1/books', {
    tenant,
    token,
    base,
    body: { isbn: '0306406152', title, author: 'A', copies },
  });
  expect(book.status).toBe(201);
  return book.json.id as string;
}

describe('an instance frozen with writes queued in its socket buffers', () => {
  it('on resume serves the client that waited, and writes nothing for the one that closed', async () => {
    const bookId = await newBook('Held', 3);
    const outboxBefore = await rootQuery<{ n: number }>(
      master.port,
      'SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ?',
      [tenant],
    );

    const closing = await opened();
    const waiting = await opened();
    api3.child.kill('SIGSTOP');
    try {
      closing.end(borrowRequest(token, bookId));
      waiting.write(borrowRequest(token, bookId));
      const waited = statusOf(waiting);
      // the closed connection's FIN sits behind its request in the frozen instance's buffer
      await new Promise((r) => setTimeout(r, 300));
      api3.child.kill('SIGCONT');
      expect(await waited).toBe(201);
    } finally {
      api3.child.kill('SIGCONT');
      waiting.destroy();
    }
    // the closed one had its turn long before the waiting one was answered; give it a second more
    await new Promise((r) => setTimeout(r, 1000));
    expect(await loansOf(bookId)).toBe(1);
    const outboxAfter = await rootQuery<{ n: number }>(
      master.port,
      'SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ?',
      [tenant],
    );
    // one loan receipt: the waiting client's
    expect(Number(outboxAfter[0]?.n) - Number(outboxBefore[0]?.n)).toBe(1);
    const copies = await rootQuery<{ available: number }>(
      master.port,
      'SELECT available FROM books WHERE tenant_id = ? AND id = ?',
      [tenant, bookId],
    );
    expect(Number(copies[0]?.available)).toBe(2);
  }, 60_000);

  it('gives the writes it had in flight their time back: they commit, none waiting for a share of the connections fails, the breaker stays closed; one whose client left is not committed', async () => {
    const bookId = await newBook('Locked', 20);
    // more than the master breaker's failure_threshold (5), and than the tenant's share of the
    // pool (7 of its 10 connections, src/db/connection-shares.ts): 7 wait on the master, the rest
    // for a share (its wait, as the pool's, gives a freeze's time back)
    const writes = 14;
    const loans: string[] = [];
    for (let i = 0; i < writes + 1; i++) {
      const loan = await api('POST', '/v1/loans', { tenant, token, base, body: { bookId } });
      expect(loan.status).toBe(201);
      loans.push(loan.json.id);
    }
    const leaving = loans.pop()!;
    const inQuery = async (n: number, what: string) =>
      waitFor(
        async () => {
          // PROCESSLIST, not INNODB_TRX: InnoDB refreshes that one only after 100 ms without a
          // read, so polling it would also blind the instance's own look at it
          const [rows] = await lock.query(
            "SELECT COUNT(*) AS n FROM information_schema.processlist WHERE command = 'Query' AND info LIKE ?",
            ['%from `loans`%for update%'],
          );
          return Number((rows as { n: number }[])[0]?.n) >= n;
        },
        { timeoutMs: 10_000, what },
      );
    // the loans' rows locked, so the returns wait in their first round trip (which reads the
    // loan FOR UPDATE) until the instance is frozen; each needs one more (its COMMIT) after that
    const lock = await rootConnection(master.port);
    let answers: Promise<number[]>;
    const client = await opened();
    try {
      await lock.query('START TRANSACTION');
      await lock.query('SELECT id FROM loans WHERE tenant_id = ? AND book_id = ? FOR UPDATE', [
        tenant,
        bookId,
      ]);
      // first on the master: a return whose client will leave while the instance is frozen
      client.write(
        [
          `POST /v1/loans/${leaving}/return HTTP/1.1`,
          'Host: shardgate',
          `X-Tenant-ID: ${tenant}`,
          `Authorization: Bearer ${token}`,
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
      await inQuery(1, 'the leaving client’s return on the master');
      answers = Promise.all(
        loans.map((id) =>
          api('POST', `/v1/loans/${id}/return`, { tenant, token, base }).then((r) => r.status),
        ),
      );
      await inQuery(7, "the returns waiting on the row locks (the tenant's share full)");
      await new Promise((r) => setTimeout(r, 200)); // the rest queued for a share
      api3.child.kill('SIGSTOP');
      client.end();
    } finally {
      // released while the instance is frozen: the master answers the returns' first round trip
      await lock.query('COMMIT');
      await lock.end();
    }
    // past the breaker's call_timeout_ms (2 s) and the pool's wait for a connection
    await new Promise((r) => setTimeout(r, 3000));
    api3.child.kill('SIGCONT');
    expect(await answers).toEqual(Array(writes).fill(200));
    const open = await rootQuery<{ id: string }>(
      master.port,
      'SELECT id FROM loans WHERE tenant_id = ? AND book_id = ? AND returned_at IS NULL',
      [tenant, bookId],
    );
    expect(open.map((r) => r.id)).toEqual([leaving]);
    const breakers = await api('GET', '/health/circuit-breakers', { base });
    const masterBreaker = (breakers.json.breakers as { name: string; state: string }[]).find(
      (b) => b.name === 'mysql-master:shard-1',
    );
    expect(masterBreaker?.state).toBe('closed');
  }, 60_000);
});
