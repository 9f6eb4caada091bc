/**
 * `npx tsx bench/freeze-instance.ts` — what the writes held by a frozen API instance become.
 * The numbers of docs/http-api.md for "An API instance that hangs" come from it.
 *
 * Needs the local stack up. Creates a tenant on shard-1 with CLIENTS members, each with a book of
 * many copies, and lets the members borrow in closed loops through HAProxy (:8080), each borrow
 * with its own `Idempotency-Key`. After 5 s `api-2` is SIGSTOPped for FREEZE_SECONDS (default
 * 35: past HAProxy's `timeout server` of 30 s), then SIGCONTed; 5 s later the loops stop. HAProxy
 * sends a keyed write the frozen instance holds to the other after 10 s (stack/haproxy-config.ts
 * `resendable`); before that it answered them 504 after 30 s. The loans written are counted
 * against the answers: one per 201, and at most one per key refused or timed out.
 *
 * Prints the answers by status, the writes `api-2` logged as not done because their client had
 * gone (before a write began, before its COMMIT), and for each write answered 504 whether it was
 * applied (its key's row exists: the key is claimed in the write's own transaction) and, for an
 * applied one, the second its transaction committed on the master (its binlog COMMIT event): in
 * the second of the freeze (its COMMIT was sent before the instance froze) or of the resume (the
 * instance wrote for a client that had gone). Ends with `api-2`'s master breaker transitions
 * logged during the run (the stalled instance must not blame the master).
 * The tenant is removed from the directory at the end (its rows stay).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOG_DIR, PID_DIR, STATE_DIR } from '../stack/paths.js';
import { api, registerAndLogin } from '../test/helpers/api.js';
import { node, rootQuery } from '../test/helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from '../test/helpers/tenants.js';

const CLIENTS = Number(process.env.CLIENTS ?? 24);
const FREEZE_SECONDS = Number(process.env.FREEZE_SECONDS ?? 35);
const INSTANCE = 'api-2';
const master = node('shard-1', 'master');

const tenant = uniqueTenantId('freeze');
await createTenant(tenant, 'shard-1');
try {
  const lib = await registerAndLogin(tenant, 'lib@example.com');
  const members: { token: string; bookId: string; id: string }[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const m = await registerAndLogin(tenant, `m${i}@example.com`);
    const b = await api('POST', '/v1/books', {
      tenant,
      token: lib.token,
      body: { isbn: '0306406152', title: `B${i}`, author: 'A', copies: 100_000 },
    });
    if (b.status !== 201) throw new Error(`book ${i}: ${b.status} ${b.text}`);
    members.push({ token: m.token, bookId: b.json.id, id: m.member.id });
  }
  const pid = Number(readFileSync(join(PID_DIR, `${INSTANCE}.pid`), 'utf8'));
  const logStart = readFileSync(join(LOG_DIR, `${INSTANCE}.log`), 'utf8').length;
  const counts: Record<string, number> = {};
  const timedOut: string[] = [];
  let answered201 = 0;
  /** keys answered neither 201 nor 504 (a 409 while a first try still ran, a lost connection) */
  const refused: string[] = [];
  const answeredAt = new Map<string, number>();
  let stop = false;
  let frozenAt = 0;
  let resumedAt = 0;
  setTimeout(() => {
    process.kill(pid, 'SIGSTOP');
    frozenAt = Date.now();
  }, 5000);
  setTimeout(
    () => {
      process.kill(pid, 'SIGCONT');
      resumedAt = Date.now();
    },
    5000 + FREEZE_SECONDS * 1000,
  );
  setTimeout(() => (stop = true), 10_000 + FREEZE_SECONDS * 1000);
  await Promise.all(
    members.map(async (m) => {
      while (!stop) {
        const key = `freeze-${Date.now()}-${Math.random().toString(36).slice(2)}`;
        const r = await api('POST', '/v1/loans', {
          tenant,
          token: m.token,
          body: { bookId: m.bookId },
          headers: { 'Idempotency-Key': key },
        }).catch(() => ({ status: 0, json: undefined }));
        // a refusal by its problem code: `409 idempotency_key_in_progress` is not `409 no_copy_available`
        const code = r.status >= 400 && typeof r.json?.code === 'string' ? ` ${r.json.code}` : '';
        counts[`${r.status}${code}`] = (counts[`${r.status}${code}`] ?? 0) + 1;
        if (r.status === 201) answered201++;
        else if (r.status !== 504) refused.push(`${m.id}/${key}`);
        if (r.status === 504) {
          timedOut.push(`${m.id}/${key}`);
          answeredAt.set(`${m.id}/${key}`, Date.now());
        }
      }
    }),
  );
  await new Promise((r) => setTimeout(r, 2000));

  const applied: string[] = [];
  for (const key of timedOut) {
    const rows = await rootQuery(
      master.port,
      'SELECT 1 FROM idempotency_keys WHERE tenant_id = ? AND idem_key = ?',
      [tenant, key],
    );
    if (rows.length > 0) applied.push(key);
  }
  // the binlog second of each applied key's row (mysqlbinlog prints `#YYMMDD HH:MM:SS` per event)
  // (the last two binlog files: the run's events may straddle a rotation)
  const files = (await rootQuery<{ Log_name: string }>(master.port, 'SHOW BINARY LOGS')).slice(-2);
  const binlog = execFileSync(
    'mysqlbinlog',
    [
      '-v',
      '--base64-output=DECODE-ROWS',
      ...files.map((f) => join(STATE_DIR, 'shard-1-master', 'data', f.Log_name)),
    ],
    { maxBuffer: 1 << 30, encoding: 'utf8' },
  );
  // the second each applied key's write committed: the `Xid` (COMMIT) event that ends the first
  // transaction naming the key, its claim (a row event's own second is when its statement ran,
  // maybe before a freeze; a later transaction naming the key stores the write's answer)
  const secondOf = new Map<string, string>();
  let pending: string[] = [];
  for (const line of binlog.split('\n')) {
    const stamp = /^#\d{6} +(\d{1,2}:\d\d:\d\d) server id/.exec(line);
    if (stamp && line.includes('Xid =')) {
      for (const key of pending) secondOf.set(key, stamp[1]!);
      pending = [];
    }
    const key = /^###\s+@2='([^']*)'/.exec(line)?.[1];
    if (key && applied.includes(key) && !secondOf.has(key) && !pending.includes(key)) pending.push(key);
  }
  const hms = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  const log = readFileSync(join(LOG_DIR, `${INSTANCE}.log`), 'utf8').slice(logStart);
  const logLines = log.split('\n');
  const transitions = logLines.filter(
    (l) => l.includes('"breaker transition"') && l.includes('mysql-master'),
  );
  console.log(
    JSON.stringify(
      {
        tenant,
        frozen: `${hms(frozenAt)}–${hms(resumedAt)} UTC`,
        answers: counts,
        // every key makes one loan at most: loansWritten = answered201 + refusedButApplied + applied
        loansWritten: Number(
          (
            await rootQuery<{ n: number }>(
              master.port,
              'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ?',
              [tenant],
            )
          )[0]?.n,
        ),
        answered201,
        refusedButApplied: (
          await Promise.all(
            refused.map((key) =>
              rootQuery(master.port, 'SELECT 1 FROM idempotency_keys WHERE tenant_id = ? AND idem_key = ?', [
                tenant,
                key,
              ]),
            ),
          )
        ).filter((rows) => rows.length > 0).length,
        timedOut: timedOut.length,
        notWritten: timedOut.length - applied.length,
        applied: applied.length,
        committedAtSecond: Object.fromEntries(
          [...secondOf.values()].reduce((m, s) => m.set(s, (m.get(s) ?? 0) + 1), new Map<string, number>()),
        ),
        // writes the instance did not do because their client had gone (answered 499), by stage
        notDoneByInstance: {
          beforeBegin: logLines.filter((l) => l.includes('went away before the write began')).length,
          beforeCommit: logLines.filter((l) => l.includes('went away before its commit')).length,
        },
        masterBreakerTransitions: transitions.length,
        // when HAProxy answered each applied one, in ms after the resume (negative: before it)
        appliedAnsweredAfterResume: applied.map((k) => (answeredAt.get(k) ?? 0) - resumedAt),
      },
      null,
      2,
    ),
  );
} finally {
  removeTenant(tenant);
}
process.exit(0);
