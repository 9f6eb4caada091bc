/**
 * `shardgate-ctl tenants delete-rows <id> --shard <s> --yes` on the local stack: refused while the
 * tenant is in the directory there, without --yes and for an unknown shard; after `tenants
 * remove` it deletes every row of the id on the shard's master (a mail not delivered yet stays),
 * and `tenants create` of the id there then finds nothing to refuse. A create of an id whose lock
 * a delete-rows (or move) holds is refused, nothing written. A registered instance that still
 * serves the removed tenant (it has not applied the removal) makes it refuse after 10 s.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteTenantRowsCommand } from '../control-plane/commands/tenant-delete-rows.js';
import { createCtlContext } from '../control-plane/ctl-context.js';
import { moveLockKey, moveRecordKey } from '../control-plane/move-record.js';
import { removalRecordKey } from '../control-plane/removal-record.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { dbPassword, stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { ctl, ctlAsync } from './helpers/ctl.js';
import {
  ETCD_ENDPOINT,
  etcdDel,
  etcdDelKey,
  etcdGet,
  etcdGetKey,
  etcdPut,
  etcdPutKey,
  PREFIX,
} from './helpers/etcd.js';
import { insertOutboxRow, outboxId } from './helpers/outbox.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('delrows');
const master = node('shard-1', 'master');
const TABLES = ['tenant_state', 'members', 'books', 'loans', 'idempotency_keys', 'outbox'];
const pendingMail = outboxId();
const HOUR_MS = 3_600_000;
/** the setting in force, its default when absent */
const retentionHours = Number(etcdGet('mail/outbox_retention_hours') ?? 168);
/** a mail delivered, and created, before the retention window: the worker's purge would delete it */
const oldMail = outboxId(Date.now() - (retentionHours + 1) * HOUR_MS);

async function rowsOf(id: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) {
    const [row] = await rootQuery<{ n: number }>(
      master.port,
      `SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ?`,
      [id],
    );
    counts[table] = Number(row?.n);
  }
  return counts;
}

describe('tenants delete-rows', () => {
  beforeAll(async () => {
    await createTenant(tenant, 'shard-1');
    const ann = await registerAndLogin(tenant, 'ann@example.com');
    await registerAndLogin(tenant, 'bob@example.com');
    const book = await api('POST', '/v1/books', {
      tenant,
      token: ann.token,
      body: { isbn: '0306406152', title: 'Gone soon', author: 'A', copies: 2 },
    });
    expect(book.status).toBe(201);
    const loan = await api('POST', '/v1/loans', {
      tenant,
      token: ann.token,
      headers: { 'Idempotency-Key': 'delrows-1' },
      body: { bookId: book.json.id },
    });
    expect(loan.status).toBe(201);
    // two welcomes and a loan receipt, delivered by the stack's worker
    await waitFor(
      async () =>
        (
          await rootQuery<{ n: number }>(
            master.port,
            'SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ? AND delivered_at IS NOT NULL',
            [tenant],
          )
        )[0]?.n === 3,
      { timeoutMs: 20_000, what: 'three mails delivered' },
    );
    // a mail published but not delivered yet: it must stay
    await insertOutboxRow(master.port, { id: pendingMail, tenant, to: 'ann@example.com', delivered: false });
  }, 60_000);
  afterAll(async () => {
    removeTenant(tenant);
    await rootQuery(master.port, 'DELETE FROM outbox WHERE tenant_id = ?', [tenant]);
  });

  it('refuses while the tenant is in the directory on that shard, without --yes, and for an unknown shard', async () => {
    const live = ctl(['tenants', 'delete-rows', tenant, '--shard', 'shard-1', '--yes'], stackEnv());
    expect(live.code).toBe(1);
    expect(live.stderr).toContain(
      `tenant ${tenant} is in the directory on shard shard-1: its rows are in use; remove it first (tenants remove ${tenant} --yes); nothing deleted`,
    );
    const unknown = ctl(['tenants', 'delete-rows', tenant, '--shard', 'shard-9', '--yes'], stackEnv());
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(
      /unknown shard "shard-9" \(known: .*shard-1, shard-2.*\); nothing deleted/,
    );

    const removed = ctl(['tenants', 'remove', tenant, '--yes'], stackEnv());
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`\`tenants delete-rows ${tenant} --shard shard-1 --yes\` deletes them`);
    const unconfirmed = ctl(['tenants', 'delete-rows', tenant, '--shard', 'shard-1'], stackEnv());
    expect(unconfirmed.code).toBe(1);
    expect(unconfirmed.stderr).toContain('cannot be undone; re-run with --yes');
    expect(await rowsOf(tenant)).toMatchObject({ members: 2, books: 1, loans: 1, outbox: 4 });
  }, 60_000);

  it('deletes every row of the id on the shard; mails delivered recently or not at all stay; create then starts empty', async () => {
    // a mail delivered before the retention window: the worker's own purge (a round a minute)
    // would delete it too, so the worker is held while it is written and the command runs
    const worker = stackPid(topology.worker.name)!;
    process.kill(worker, 'SIGSTOP');
    let r: ReturnType<typeof ctl>;
    try {
      await insertOutboxRow(master.port, {
        id: oldMail,
        tenant,
        to: 'ann@example.com',
        delivered: true,
        deliveredHoursAgo: retentionHours + 1,
      });
      r = ctl(['tenants', 'delete-rows', tenant, '--shard', 'shard-1', '--yes'], stackEnv());
    } finally {
      process.kill(worker, 'SIGCONT');
    }
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^shard shard-1: deleted 2 member\\(s\\), 1 book\\(s\\), 1 loan\\(s\\), [1-9]\\d* idempotency key\\(s\\), 1 delivered mail\\(s\\) of tenant ${tenant}; 3 delivered mail\\(s\\) stay \\(they were delivered within mail/outbox_retention_hours \\(${retentionHours} h\\): they stay until the worker purges them, so a redelivered copy is not sent twice\\); 1 mail\\(s\\) not delivered \\(due, retrying or dead-lettered\\) stay in the outbox; the id is free there\\n$`,
      ),
    );
    expect(await rowsOf(tenant)).toEqual({
      tenant_state: 0,
      members: 0,
      books: 0,
      loans: 0,
      idempotency_keys: 0,
      outbox: 4,
    });
    // the id is free: create counts no row and refuses nothing, and the tenant starts empty
    const created = ctl(['tenants', 'create', tenant, '--shard', 'shard-1'], stackEnv());
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    await waitFor(async () => (await api('GET', '/v1/books', { tenant })).status === 200, {
      timeoutMs: 5000,
      what: 'the tenant created again',
    });
    const books = await api('GET', '/v1/books', { tenant });
    expect(books.json.items).toEqual([]);
  }, 60_000);

  it('refuses a tenant the instances keep on that shard by its last good value, and one with a move record', async () => {
    const other = uniqueTenantId('delrows-kept');
    await createTenant(other, 'shard-1');
    try {
      // rejected by the instances (a bad status): they keep serving it on shard-1
      etcdPut(`tenants/${other}`, JSON.stringify({ shard: 'shard-2', status: 'bogus' }));
      const kept = ctl(['tenants', 'delete-rows', other, '--shard', 'shard-1', '--yes'], stackEnv());
      expect(kept.code).toBe(1);
      expect(kept.stderr).toContain(`tenant ${other}'s entry is one the instances reject (`);
      // written on shard-2 (rejected): refused there too
      expect(ctl(['tenants', 'delete-rows', other, '--shard', 'shard-2', '--yes'], stackEnv()).code).toBe(1);

      etcdDel(`tenants/${other}`);
      const record = moveRecordKey(PREFIX, other);
      etcdPutKey(
        record,
        JSON.stringify({
          from: 'shard-1',
          to: 'shard-2',
          status: 'active',
          startedAt: new Date().toISOString(),
        }),
      );
      try {
        const moving = ctl(['tenants', 'delete-rows', other, '--shard', 'shard-1', '--yes'], stackEnv());
        expect(moving.code).toBe(1);
        expect(moving.stderr).toContain(`tenant ${other} has the record of a move`);
      } finally {
        etcdDelKey(record);
      }
    } finally {
      removeTenant(other);
    }
  }, 60_000);

  it('tenants create of an id is refused while a delete-rows (or move) of it holds its lock, nothing written', async () => {
    const id = uniqueTenantId('delrows-lock');
    const etcd = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    // the lock as delete-rows takes it (move-lock.ts)
    const lock = etcd.lock(moveLockKey(PREFIX, id)).ttl(10);
    await lock.acquire();
    try {
      const refused = ctl(['tenants', 'create', id, '--shard', 'shard-1'], stackEnv());
      // before: created while the rows of the id were being deleted under it
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(
          `^shardgate-ctl: tenants create: tenant ${id} is busy: a tenants move, delete-rows or create of it is running \\(etcd lock /shardgate\\.locks/tenant-move/${id}\\);`,
        ),
      );
      expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    } finally {
      await lock.release();
      etcd.close();
    }
    const created = ctl(['tenants', 'create', id, '--shard', 'shard-1'], stackEnv());
    expect([created.code, created.stderr]).toEqual([0, '']);
    etcdDel(`tenants/${id}`);
  }, 30_000);

  /**
   * A registered stand-in instance under a lease (gone with this test) reporting `configRevision`.
   * With `appliesBarrier`, it reports the revision of each put of runtime/barrier as a real
   * instance would once it applied it; without, it stays where it is (an instance behind).
   */
  async function standInInstance(
    instance: string,
    configRevision: number,
    { appliesBarrier = false, rejectedTenants = [] as string[] } = {},
  ) {
    const etcd = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    const lease = etcd.lease(30);
    const register = (revision: number) =>
      lease
        .put(`${PREFIX}instances/${instance}`)
        .value(
          JSON.stringify({
            url: 'http://127.0.0.1:9',
            configRevision: revision,
            startedAt: new Date().toISOString(),
            ...(rejectedTenants.length > 0 ? { rejectedTenants } : {}),
          }),
        )
        .exec();
    await register(configRevision);
    const watcher = appliesBarrier
      ? await etcd
          .watch()
          .key(`${PREFIX}runtime/barrier`)
          .create()
          .then((w) => w.on('put', (kv) => void register(Number(kv.mod_revision))))
      : undefined;
    return {
      gone: async () => {
        await watcher?.cancel().catch(() => {});
        await lease.revoke().catch(() => {});
        etcd.close();
      },
    };
  }

  /** etcd's revision now */
  async function etcdRevision(): Promise<number> {
    const etcd = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    try {
      return Number((await etcd.get(`${PREFIX}placement`).exec()).header.revision);
    } finally {
      etcd.close();
    }
  }

  it('waits up to 10 s for every registered instance to apply a barrier put after the removal, and refuses, nothing deleted, when one has not', async () => {
    const id = uniqueTenantId('delrows-lagging');
    await createTenant(id, 'shard-1');
    await registerAndLogin(id, 'cy@example.com');
    expect(ctl(['tenants', 'remove', id, '--yes'], stackEnv()).code).toBe(0);
    // it has applied the removal, but not what comes after: the barrier it must report
    const instance = `zz-lagging-${id.slice(-8)}`;
    const lagging = await standInInstance(instance, await etcdRevision());
    // a registration the schema rejects cannot be judged
    const rejected = `zz-rejected-${id.slice(-8)}`;
    etcdPut(`instances/${rejected}`, '{"url":"http://127.0.0.1:9/path","configRevision":1,"startedAt":"x"}');
    try {
      const refused = await ctlAsync(
        ['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'],
        stackEnv(),
      );
      // before: deleted at once, an instance still writing the tenant's rows or not
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(
          `instance\\(s\\) ${instance} \\(at revision \\d+\\), ${rejected} \\(its registration is rejected: url: must be http\\(s\\)://host:port[^)]*\\), 10 s after revision (\\d+) \\(a barrier put once tenant ${id} was off shard shard-1\\): one that has not applied that revision, or rejects the tenant's entry, could write its rows after they are deleted; nothing deleted`,
        ),
      );
      const barrier = JSON.parse(etcdGet('runtime/barrier')!);
      expect(barrier).toMatchObject({ by: `tenants delete-rows ${id} --shard shard-1` });
      expect(refused.elapsedMs).toBeGreaterThanOrEqual(10_000);
      expect((await rowsOf(id)).members).toBe(1);
    } finally {
      await lagging.gone();
      etcdDel(`instances/${rejected}`);
    }
    // the stack's instances apply the barrier: nothing to wait for
    const done = await ctlAsync(['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'], stackEnv());
    expect([done.code, done.stderr]).toEqual([0, '']);
    expect((await rowsOf(id)).members).toBe(0);
  }, 60_000);

  it('does not trust a removal record left from an earlier removal: an instance that applied a re-add but not the delete after it is waited on', async () => {
    const id = uniqueTenantId('delrows-stale');
    await createTenant(id, 'shard-1');
    await registerAndLogin(id, 'di@example.com');
    expect(ctl(['tenants', 'remove', id, '--yes'], stackEnv()).code).toBe(0);
    expect(etcdGetKey(removalRecordKey(PREFIX, id, 'shard-1'))).toBeDefined();
    // put back by hand, then deleted by hand: the record still speaks of the first removal
    etcdPut(`tenants/${id}`, '{"shard":"shard-1","status":"active"}');
    const instance = `zz-stale-${id.slice(-8)}`;
    const lagging = await standInInstance(instance, await etcdRevision());
    etcdDel(`tenants/${id}`);
    try {
      const refused = await ctlAsync(
        ['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'],
        stackEnv(),
      );
      // before (a review): its revision was past the record's, so the rows went at once
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(`instance(s) ${instance} (at revision `);
      expect((await rowsOf(id)).members).toBe(1);
    } finally {
      await lagging.gone();
    }
    const done = await ctlAsync(['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'], stackEnv());
    expect([done.code, done.stderr]).toEqual([0, '']);
  }, 60_000);

  it('refuses while an instance that applied the barrier lists the tenant among the entries it rejects (it may serve its last good value)', async () => {
    const id = uniqueTenantId('delrows-rejecting');
    await createTenant(id, 'shard-1');
    await registerAndLogin(id, 'fa@example.com');
    // the entry placed on shard-2, which this instance could not take (a shard whose passwordEnv
    // it lacks): it keeps serving the tenant on shard-1, as the CLI cannot see
    etcdPut(`tenants/${id}`, '{"shard":"shard-2","status":"active"}');
    const instance = `zz-rejecting-${id.slice(-8)}`;
    const rejecting = await standInInstance(instance, 1, { appliesBarrier: true, rejectedTenants: [id] });
    try {
      const refused = await ctlAsync(
        ['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'],
        stackEnv(),
      );
      // before (a review): it reported the barrier's revision, and shard-1's rows went
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(
        `instance(s) ${instance} (rejects the entry of tenant ${id}: it may serve its last good value), 10 s after revision `,
      );
      expect((await rowsOf(id)).members).toBe(1);
    } finally {
      await rejecting.gone();
    }
    etcdDel(`tenants/${id}`);
    const done = await ctlAsync(['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'], stackEnv());
    expect([done.code, done.stderr]).toEqual([0, '']);
  }, 60_000);

  it('goes on once an instance behind the removal (registered after it, or re-read the config) applies the barrier', async () => {
    const id = uniqueTenantId('delrows-fresh');
    await createTenant(id, 'shard-1');
    await registerAndLogin(id, 'ed@example.com');
    expect(ctl(['tenants', 'remove', id, '--yes'], stackEnv()).code).toBe(0);
    // a full read after a delete reports the newest key left, below the delete's revision
    const fresh = await standInInstance(`zz-fresh-${id.slice(-8)}`, 1, { appliesBarrier: true });
    try {
      const done = await ctlAsync(['tenants', 'delete-rows', id, '--shard', 'shard-1', '--yes'], stackEnv());
      // before (a review): refused after 10 s for good, or let through on an HTTP 404 alone
      expect([done.code, done.stderr]).toEqual([0, '']);
      expect(done.elapsedMs).toBeLessThan(10_000);
      expect((await rowsOf(id)).members).toBe(0);
    } finally {
      await fresh.gone();
    }
  }, 60_000);
  it("puts the barrier only on the tenant's entry as read: one placed back on the shard meanwhile refuses, nothing deleted; one changed elsewhere is read again", async () => {
    /** runs delete-rows in-process, `change` run just before its first guarded put of the barrier */
    async function deleteRowsRacing(
      id: string,
      change: () => void,
    ): Promise<{ error?: Error; changed: boolean }> {
      const ctx = createCtlContext();
      ctx.env = { ...ctx.env, SHARDGATE_DB_PASSWORD: dbPassword() };
      ctx.out = () => {};
      const etcd = ctx.etcd;
      let changed = false;
      ctx.etcd = new Proxy(etcd, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target) as unknown;
          if (prop !== 'if' || typeof value !== 'function') return value;
          return (key: string, ...rest: unknown[]) => {
            const builder = (value as (...a: unknown[]) => { commit(): Promise<unknown> }).call(
              target,
              key,
              ...rest,
            );
            if (changed || key !== `${PREFIX}tenants/${id}`) return builder;
            const commit = builder.commit.bind(builder);
            builder.commit = async () => {
              changed = true;
              change();
              return commit();
            };
            return builder;
          };
        },
      });
      try {
        await deleteTenantRowsCommand(ctx, id, { shard: 'shard-1', yes: true });
        return { changed };
      } catch (error) {
        return { error: error as Error, changed };
      } finally {
        ctx.close();
      }
    }

    const back = uniqueTenantId('delrows-back');
    await createTenant(back, 'shard-1');
    await registerAndLogin(back, 'gb@example.com');
    expect(ctl(['tenants', 'remove', back, '--yes'], stackEnv()).code).toBe(0);
    // placed on shard-1 again between the command's read and its put (by hand: no lock)
    const placedBack = await deleteRowsRacing(back, () =>
      etcdPut(`tenants/${back}`, '{"shard":"shard-1","status":"active"}'),
    );
    expect(placedBack.changed).toBe(true);
    expect(placedBack.error?.message).toBe(
      `tenant ${back} is in the directory on shard shard-1: its rows are in use; remove it first (tenants remove ${back} --yes); nothing deleted`,
    );
    expect((await rowsOf(back)).members).toBe(1);
    expect((await api('GET', '/v1/books', { tenant: back })).status).toBe(200);
    removeTenant(back);

    const elsewhere = uniqueTenantId('delrows-elsewhere');
    await createTenant(elsewhere, 'shard-1');
    await registerAndLogin(elsewhere, 'ge@example.com');
    expect(ctl(['tenants', 'remove', elsewhere, '--yes'], stackEnv()).code).toBe(0);
    // placed on shard-2 meanwhile: the guard fails once, and the second read finds the tenant
    // off shard-1 still
    const placedElsewhere = await deleteRowsRacing(elsewhere, () =>
      etcdPut(`tenants/${elsewhere}`, '{"shard":"shard-2","status":"active"}'),
    );
    expect([placedElsewhere.changed, placedElsewhere.error?.message]).toEqual([true, undefined]);
    expect((await rowsOf(elsewhere)).members).toBe(0);
    removeTenant(elsewhere);
  }, 60_000);
});
