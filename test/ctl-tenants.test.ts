/**
 * shardgate-ctl against the real etcd of the local stack: `tenants set-status`, `tenants remove`,
 * `tenants list|show` of entries the schema rejects, and the TCP reachability check of the
 * addresses that `shards add|set-master|add-replica` write.
 *
 * Every tenant and shard id made here starts with `ct-`; every key made here is removed with a
 * single-key delete at the end (never a range), and no other key is written.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createTenant as createTenantCommand, setTenantStatus } from '../control-plane/commands/tenants.js';
import { createCtlContext } from '../control-plane/ctl-context.js';
import { moveRecordKey } from '../control-plane/move-record.js';
import { removalRecordKey } from '../control-plane/removal-record.js';
import { tenantCacheEpochKey } from '../src/config/schema.js';
import { dbPassword, stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdDelKey, etcdGet, etcdGetKey, etcdPut, etcdPutKey, PREFIX } from './helpers/etcd.js';
import { rootQuery } from './helpers/shard-db.js';
import { createTenant } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

/** CONTRACT.md §5: a user error is exactly one line on stderr, naming the command and the culprit. */
const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;
/** A port nothing listens on in the local stack. */
const CLOSED = '127.0.0.1:3999';

const unique = (label: string) => `ct-${label}-${randomBytes(4).toString('hex')}`;

/** Keys (relative to the prefix) this file created; each is deleted on its own at the end. */
const created = new Set<string>();
function cleanUp(key: string): void {
  if (etcdGet(key) !== undefined) etcdDel(key);
  created.delete(key);
}
/** Keys beside the prefix (removal records) this file created or caused; deleted one by one. */
const rawKeys = new Set<string>();
afterAll(() => {
  for (const key of [...created]) cleanUp(key);
  for (const key of rawKeys) if (etcdGetKey(key) !== undefined) etcdDelKey(key);
});

/** `run` with SHARDGATE_DB_PASSWORD unset, as an operator with etcd access only runs the CLI. */
function withoutPassword<T>(run: () => T): T {
  const saved = process.env.SHARDGATE_DB_PASSWORD;
  delete process.env.SHARDGATE_DB_PASSWORD;
  try {
    return run();
  } finally {
    if (saved !== undefined) process.env.SHARDGATE_DB_PASSWORD = saved;
  }
}

function put(key: string, value: string): void {
  created.add(key);
  etcdPut(key, value);
}

async function newTenant(label: string, shard = 'shard-1'): Promise<string> {
  const id = unique(label);
  created.add(`tenants/${id}`);
  await createTenant(id, shard);
  return id;
}

/** A quiet context of a command whose every etcd call is followed by `after` (someone else's edit). */
function ctxWithAfterEachCall(after: () => void): ReturnType<typeof createCtlContext> {
  const ctx = createCtlContext();
  ctx.out = () => {};
  const call = ctx.call.bind(ctx);
  ctx.call = async <T>(fn: () => Promise<T>): Promise<T> => {
    const result = await call(fn);
    after();
    return result;
  };
  return ctx;
}

/** What every API instance answers to a read of `tenant`. */
async function answers(tenant: string): Promise<number[]> {
  return Promise.all(
    INSTANCES.map(async (base) => (await api('GET', '/v1/books?limit=1', { tenant, base })).status),
  );
}

describe('shardgate-ctl tenants create on an unknown shard', () => {
  it('refuses, naming the shards it could use, and writes nothing', () => {
    const id = unique('noshard');
    created.add(`tenants/${id}`);
    const r = ctl(['tenants', 'create', id, '--shard', 'shard-9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(`invalid /shardgate/tenants/${id}: unknown shard "shard-9" (known: `);
    expect(r.stderr).toMatch(/\(known: [^)]*\bshard-1, [^)]*\bshard-2\b[^)]*\); nothing written/);
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
  });
});

describe('shardgate-ctl tenants set-status', () => {
  it('changes the status only, says what changed, and the instances apply it', async () => {
    const id = unique('status');
    created.add(`tenants/${id}`);
    const made = ctl(['tenants', 'create', id, '--shard', 'shard-1', '--name', 'Status Test']);
    expect(made.code, made.stderr).toBe(0);

    const r = ctl(['tenants', 'set-status', id, 'suspended']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^tenant ${id}: active -> suspended\\nrevision \\d+\\n$`));
    expect(JSON.parse(etcdGet(`tenants/${id}`)!)).toEqual({
      shard: 'shard-1',
      status: 'suspended',
      name: 'Status Test',
    });
    await waitFor(async () => (await answers(id)).every((s) => s === 403), {
      timeoutMs: 5000,
      what: `${id} suspended on every instance`,
    });

    const again = ctl(['tenants', 'set-status', id, 'suspended']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`tenant ${id}: already suspended; nothing written\n`);

    const back = ctl(['tenants', 'set-status', id, 'readonly']);
    expect(back.code).toBe(0);
    expect(back.stdout).toMatch(new RegExp(`^tenant ${id}: suspended -> readonly\\n`));

    // the mark a stopped move left goes when an operator keeps the tenant readonly: its writes
    // no longer say it is moving
    put(`moving/${id}`, JSON.stringify({ since: new Date().toISOString() }));
    await waitFor(
      async () =>
        (
          await api('POST', '/v1/members', {
            tenant: id,
            body: { email: 'm@example.com', name: 'M', password: 'password123' },
          })
        ).headers.get('Retry-After') === '1',
      { timeoutMs: 3000, what: 'the mark in force' },
    );
    const kept = ctl(['tenants', 'set-status', id, 'readonly']);
    expect([kept.code, kept.stderr]).toEqual([0, '']);
    expect(kept.stdout).toContain(
      `tenant ${id}: readonly, now as an operator's (the mark of a stopped move, moving/${id}, deleted`,
    );
    expect(etcdGet(`moving/${id}`)).toBeUndefined();
    const again2 = ctl(['tenants', 'set-status', id, 'readonly']);
    expect(again2.stdout).toBe(`tenant ${id}: already readonly; nothing written\n`);
  });

  it('fixing a rejected entry goes from the status in force and keeps the name the rejected entry lost', async () => {
    const id = unique('fix');
    created.add(`tenants/${id}`);
    expect(ctl(['tenants', 'create', id, '--shard', 'shard-1', '--name', 'Docs Library A']).code).toBe(0);
    // an operator's put the instances reject: `status` given twice, and no name
    put(`tenants/${id}`, '{"shard":"shard-1","status":"active","status":"readonly"}');
    const r = ctl(['tenants', 'set-status', id, 'active']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    // before: "readonly -> active" (the rejected entry's last status), and the name dropped
    expect(r.stdout).toMatch(
      new RegExp(
        `^tenant ${id}: active \\(in force; its entry was rejected: [^\\n]*status[^\\n]*\\) -> active; name "Docs Library A" kept from the value in force\\n`,
      ),
    );
    expect(JSON.parse(etcdGet(`tenants/${id}`)!)).toEqual({
      shard: 'shard-1',
      status: 'active',
      name: 'Docs Library A',
    });
  });

  it('refuses to fix a rejected entry by writing another shard than the one in force: that would route the tenant without its rows', async () => {
    const id = unique('fixshard');
    created.add(`tenants/${id}`);
    expect(ctl(['tenants', 'create', id, '--shard', 'shard-1', '--name', "Shard O'Kept"]).code).toBe(0);
    const rejected = '{"shard":"shard-1","shard":"shard-2","status":"active"}';
    put(`tenants/${id}`, rejected);
    const r = ctl(['tenants', 'set-status', id, 'active']);
    expect([r.code, r.stdout]).toEqual([1, '']);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(
      `names shard shard-2, while they route the tenant to shard shard-1 (its last good value): writing it would send the tenant to a shard without its rows; nothing written`,
    );
    expect(r.stderr).toContain(`tenants move ${id} --to shard-2`);
    // both suggested puts keep the name in force, quoted for the shell (a review: the second
    // dropped it, and an apostrophe broke both)
    const name = `"name":"Shard O'\\''Kept"`;
    expect(r.stderr).toContain(
      `\`etcdctl put ${PREFIX}tenants/${id} '{"shard":"shard-1","status":"active",${name}}'\``,
    );
    expect(r.stderr).toContain(
      `put the entry yourself: \`etcdctl put ${PREFIX}tenants/${id} '{"shard":"shard-2","status":"active",${name}}'\``,
    );
    // before: written as {"shard":"shard-2",…}, the tenant routed to shard-2
    expect(etcdGet(`tenants/${id}`)).toBe(rejected);
  });

  it('refuses a status outside the schema and an unknown tenant, with one line and nothing written', async () => {
    const id = await newTenant('badstatus');
    const before = etcdGet(`tenants/${id}`);
    const bad = ctl(['tenants', 'set-status', id, 'frozen']);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toMatch(ONE_LINE);
    expect(bad.stderr).toContain(
      'tenants set-status: invalid status "frozen": one of active, readonly, suspended',
    );
    expect(etcdGet(`tenants/${id}`)).toBe(before);

    const ghost = unique('ghost');
    const unknown = ctl(['tenants', 'set-status', ghost, 'readonly']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(ONE_LINE);
    expect(unknown.stderr).toContain(`unknown tenant ${ghost}`);
    expect(etcdGet(`tenants/${ghost}`)).toBeUndefined();
  });

  it('keeps an edit made between its read and its write: it reads again and changes only the status', async () => {
    const id = await newTenant('race');
    const key = `tenants/${id}`;
    const concurrent = JSON.stringify({ shard: 'shard-1', status: 'readonly', name: 'edited meanwhile' });
    let reads = 0;
    // the first etcd call is the command's read; an operator's put lands right after it
    const ctx = ctxWithAfterEachCall(() => {
      if (reads++ === 0) etcdPut(key, concurrent);
    });
    try {
      await setTenantStatus(ctx, id, 'suspended');
    } finally {
      ctx.close();
    }
    // the guarded write found the edit, read again, and kept it (read, refused write, read, write)
    expect(reads).toBeGreaterThanOrEqual(4);
    expect(JSON.parse(etcdGet(key)!)).toEqual({
      shard: 'shard-1',
      status: 'suspended',
      name: 'edited meanwhile',
    });
  });
});

describe('shardgate-ctl: deletes made between a read and its write', () => {
  it('set-status of a tenant removed meanwhile does not bring it back: it reads again and finds none', async () => {
    const id = await newTenant('gone');
    const key = `tenants/${id}`;
    let calls = 0;
    // the tenant is removed right after the command's first read
    const ctx = ctxWithAfterEachCall(() => {
      if (calls++ === 0) etcdDel(key);
    });
    let error: unknown;
    try {
      await setTenantStatus(ctx, id, 'readonly');
    } catch (e) {
      error = e;
    } finally {
      ctx.close();
    }
    // before: written, the removed tenant back as readonly (the guard saw no change: a deleted key
    // is in no range)
    expect(etcdGet(key)).toBeUndefined();
    expect(String(error)).toContain(`unknown tenant ${id}`);
  });

  it('create onto a shard removed meanwhile is refused after a new read, not written', async () => {
    const shardId = unique('s');
    put(
      `shards/${shardId}`,
      JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [], database: 'shardgate' }),
    );
    const id = unique('orphan');
    created.add(`tenants/${id}`);
    let calls = 0;
    const ctx = ctxWithAfterEachCall(() => {
      if (calls++ === 0) cleanUp(`shards/${shardId}`);
    });
    let error: unknown;
    try {
      await createTenantCommand(ctx, id, { shard: shardId });
    } catch (e) {
      error = e;
    } finally {
      ctx.close();
    }
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    expect(String(error)).toContain(shardId);
  });
});

describe("shardgate-ctl tenants: writes beside other tenants' changes", () => {
  it('create and set-status are not refused while other tenants are written after every read', async () => {
    let calls = 0;
    // someone else's tenant lands after each etcd call of the command: a guard over the whole
    // directory refused all of its attempts ("etcd changed since revision …")
    const ctx = ctxWithAfterEachCall(() => {
      put(`tenants/${unique(`other${calls++}`)}`, JSON.stringify({ shard: 'shard-2', status: 'active' }));
    });
    const id = unique('beside');
    created.add(`tenants/${id}`);
    try {
      await createTenantCommand(ctx, id, { shard: 'shard-1' });
      await setTenantStatus(ctx, id, 'readonly');
    } finally {
      ctx.close();
    }
    expect(JSON.parse(etcdGet(`tenants/${id}`)!)).toEqual({ shard: 'shard-1', status: 'readonly' });
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});

describe('shardgate-ctl tenants set-status of an entry the instances reject', () => {
  it('refuses, naming the problem and how to fix it, instead of "already active"', async () => {
    const id = await newTenant('rejected');
    const key = `tenants/${id}`;
    expect(ctl(['tenants', 'set-status', id, 'suspended']).code).toBe(0);
    // the instances reject these and keep enforcing the last good value (suspended)
    const gone = unique('gone');
    for (const [raw, problem] of [
      ['{}', 'shard: '],
      [JSON.stringify({ shard: gone }), `unknown shard "${gone}"`],
      [JSON.stringify({ shard: 'shard-1', status: 'active', colour: 'red' }), 'nrecognized key'],
    ] as const) {
      put(key, raw);
      const r = ctl(['tenants', 'set-status', id, 'active']);
      expect(r.stdout, raw).toBe('');
      expect(r.stderr, raw).toMatch(ONE_LINE);
      expect(r.stderr, raw).toContain(
        `tenants set-status: tenant ${id} has an entry the API instances reject (`,
      );
      expect(r.stderr, raw).toContain(problem);
      expect(r.stderr, raw).toContain(`etcdctl put /shardgate/${key} `);
      expect(r.stderr, raw).not.toContain('already');
      expect(r.code, raw).toBe(1);
      expect(etcdGet(key), raw).toBe(raw);
    }
    // an entry whose only problem is its id (written by hand): no put fixes that, its removal does
    const badId = `${unique('bad')}-X`;
    put(`tenants/${badId}`, JSON.stringify({ shard: 'shard-1', status: 'active' }));
    try {
      const r = ctl(['tenants', 'set-status', badId, 'readonly']);
      expect([r.code, r.stdout]).toEqual([1, '']);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain('no value makes it valid; nothing written. Remove it with `tenants remove`');
      expect(r.stderr).not.toContain('etcdctl put');
    } finally {
      etcdDel(`tenants/${badId}`);
    }
    // an entry whose only problem is its status is fixed by the command itself
    put(key, JSON.stringify({ shard: 'shard-1', status: 'frozen' }));
    const fixed = ctl(['tenants', 'set-status', id, 'readonly']);
    expect(fixed.stderr).toBe('');
    // from the status the instances enforce (its last good value), not the rejected entry's
    expect(fixed.stdout).toMatch(
      new RegExp(
        `^tenant ${id}: suspended \\(in force; its entry was rejected: status: [^\\n]*\\) -> readonly\\n`,
      ),
    );
    expect(fixed.code).toBe(0);
  });
});

describe('shardgate-ctl tenants remove', () => {
  it('needs --yes; then removes the directory entry only, and the tenant answers 404', async () => {
    const id = await newTenant('remove');
    const refused = ctl(['tenants', 'remove', id]);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain(`removing tenant ${id} makes it answer 404 at once`);
    expect(refused.stderr).toContain('re-run with --yes');
    expect(etcdGet(`tenants/${id}`)).toBeDefined();
    // its own cache epoch (moved after a write of unknown outcome) goes with it
    etcdPut(tenantCacheEpochKey(id), '42');

    // the tenant never had a row: before, the output still said "the id … is not free"
    const r = ctl(['tenants', 'remove', id, '--yes'], { SHARDGATE_DB_PASSWORD: dbPassword() });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`tenant ${id} removed from the directory`);
    expect(r.stdout).toContain('its rows stay on shard shard-1, nothing was deleted there');
    expect(r.stdout).toContain(
      `shard shard-1 holds no member, book or loan of tenant ${id}: a tenant created with this id there starts empty`,
    );
    expect(r.stdout).not.toContain('not free');
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    expect(etcdGet(tenantCacheEpochKey(id))).toBeUndefined();
    await waitFor(async () => (await answers(id)).every((s) => s === 404), {
      timeoutMs: 5000,
      what: `${id} unknown on every instance`,
    });

    const gone = ctl(['tenants', 'remove', id, '--yes']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toMatch(ONE_LINE);
    expect(gone.stderr).toContain(`unknown tenant ${id}`);
  });

  it('without a database password says in its own line that the id may not be free, and prints no warning of create', async () => {
    // an outside check: remove printed create's "did not check shard … this tenant gets its
    // members, librarian and tokens back" next to its own "may not be free" line
    const id = await newTenant('remove-blind');
    rawKeys.add(removalRecordKey(PREFIX, id, 'shard-1'));
    const r = withoutPassword(() => ctl(['tenants', 'remove', id, '--yes']));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(
      `the id ${id} may not be free: its rows were not checked (no database password (SHARDGATE_DB_PASSWORD is not set)); a tenant created with it on the same shard would get back whatever rows it has there`,
    );
    expect(r.stdout).not.toContain('did not check shard');
    expect(r.stdout).not.toContain('this tenant gets');
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    expect(JSON.parse(etcdGetKey(removalRecordKey(PREFIX, id, 'shard-1'))!)).toMatchObject({
      rows: 'unchecked',
    });
  });

  it('create refuses an id whose rows an earlier tenant left on the shard, unless --adopt-rows', async () => {
    const id = await newTenant('reuse');
    const record = removalRecordKey(PREFIX, id, 'shard-1');
    rawKeys.add(record);
    const member = await api('POST', '/v1/members', {
      tenant: id,
      body: { email: 'first@example.com', name: 'First', password: 'correct horse battery' },
    });
    expect(member.status).toBe(201);
    const withPassword = { SHARDGATE_DB_PASSWORD: dbPassword() };
    const removed = ctl(['tenants', 'remove', id, '--yes'], withPassword);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(
      `the id ${id} is not free: shard shard-1 still holds its rows (1 member(s), 0 book(s), 0 loan(s))`,
    );
    expect(removed.stdout).toContain(
      `\`tenants create\` of it on shard shard-1 refuses it while the rows are there or cannot be counted, unless --adopt-rows`,
    );
    expect(JSON.parse(etcdGetKey(record)!)).toMatchObject({ rows: 'present' });
    // before: created, and the earlier tenant's librarian and tokens worked again
    const refused = ctl(['tenants', 'create', id, '--shard', 'shard-1'], withPassword);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain(
      `tenant id ${id} was used before: shard shard-1 still holds its rows (1 member(s), 0 book(s), 0 loan(s))`,
    );
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    // without a password the rows cannot be counted, but the removal was recorded: refused in one
    // line (before: created with a warning, and the old librarian's token worked in the new tenant)
    const blind = withoutPassword(() => ctl(['tenants', 'create', id, '--shard', 'shard-1']));
    expect(blind.code).toBe(1);
    expect(blind.stdout).toBe('');
    expect(blind.stderr).toMatch(ONE_LINE);
    expect(blind.stderr).toMatch(
      new RegExp(
        `tenant id ${id} was removed from shard shard-1 at \\d{4}-\\d\\d-\\d\\dT[^ ]+ with its rows left there, and they cannot be counted now \\(no database password \\(SHARDGATE_DB_PASSWORD is not set\\)\\)`,
      ),
    );
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    // nor when the check cannot run (the server refuses the password)
    const wrong = ctl(['tenants', 'create', id, '--shard', 'shard-1'], {
      SHARDGATE_DB_PASSWORD: 'not-the-password',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(ONE_LINE);
    expect(wrong.stderr).toContain(`tenant id ${id} was removed from shard shard-1 at `);
    expect(wrong.stderr).toContain('they cannot be counted now (');
    expect(wrong.stderr).not.toContain('not-the-password');
    expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    // on a shard without its rows, nothing comes back: created, also without a password (with
    // the warning), and its removal there, which counts none, leaves no record
    const elsewhere = withoutPassword(() => ctl(['tenants', 'create', id, '--shard', 'shard-2']));
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stderr).toContain(
      `did not check shard shard-2 for rows an earlier tenant ${id} left there: no database password (SHARDGATE_DB_PASSWORD is not set)`,
    );
    expect(ctl(['tenants', 'remove', id, '--yes'], withPassword).code).toBe(0);
    expect(etcdGetKey(removalRecordKey(PREFIX, id, 'shard-2'))).toBeUndefined();
    // taken back on purpose: no check, no warning, and the record goes
    const adopted = withoutPassword(() =>
      ctl(['tenants', 'create', id, '--shard', 'shard-1', '--adopt-rows']),
    );
    expect(adopted.stderr).toBe('');
    expect(adopted.code).toBe(0);
    expect(etcdGet(`tenants/${id}`)).toBe('{"shard":"shard-1","status":"active"}');
    expect(etcdGetKey(record)).toBeUndefined();
    // a removal that cannot count the rows records it too
    const unchecked = ctl(['tenants', 'remove', id, '--yes'], { SHARDGATE_DB_PASSWORD: 'not-the-password' });
    expect(unchecked.code).toBe(0);
    expect(unchecked.stdout).toContain(`the id ${id} may not be free: its rows were not checked`);
    expect(JSON.parse(etcdGetKey(record)!)).toMatchObject({ rows: 'unchecked' });
  });

  it('create without a password warns of an id never recorded as removed; one whose rows are gone loses its record', async () => {
    // an id no `tenants remove` recorded (new, or removed by a plain etcdctl del): created, warned
    const fresh = unique('fresh');
    created.add(`tenants/${fresh}`);
    const made = withoutPassword(() => ctl(['tenants', 'create', fresh, '--shard', 'shard-2']));
    expect(made.code).toBe(0);
    expect(made.stderr).toContain(
      `did not check shard shard-2 for rows an earlier tenant ${fresh} left there: no database password`,
    );
    // a record of rows since deleted (by hand): a create that counts none there takes the id and
    // deletes the record
    const cleared = unique('cleared');
    created.add(`tenants/${cleared}`);
    const record = removalRecordKey(PREFIX, cleared, 'shard-1');
    rawKeys.add(record);
    etcdPutKey(record, JSON.stringify({ removedAt: new Date().toISOString(), rows: 'present' }));
    const refused = withoutPassword(() => ctl(['tenants', 'create', cleared, '--shard', 'shard-1']));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`tenant id ${cleared} was removed from shard shard-1 at `);
    const counted = ctl(['tenants', 'create', cleared, '--shard', 'shard-1'], {
      SHARDGATE_DB_PASSWORD: dbPassword(),
    });
    expect(counted.stderr).toBe('');
    expect(counted.code).toBe(0);
    expect(etcdGetKey(record)).toBeUndefined();
    // a record that is not readable still says the id was removed there
    const garbled = unique('garbled');
    created.add(`tenants/${garbled}`);
    const garbledRecord = removalRecordKey(PREFIX, garbled, 'shard-1');
    rawKeys.add(garbledRecord);
    etcdPutKey(garbledRecord, 'not json');
    const blocked = withoutPassword(() => ctl(['tenants', 'create', garbled, '--shard', 'shard-1']));
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(ONE_LINE);
    expect(blocked.stderr).toContain(
      `tenant id ${garbled} was removed from shard shard-1 with its rows left there, and they cannot be counted now`,
    );
  });

  it('remove of a tenant whose move was interrupted records the other shard of the move too', async () => {
    // an outside review: the move may have copied rows to its target, which nothing recorded
    const id = await newTenant('moved', 'shard-1');
    const moveRecord = moveRecordKey(PREFIX, id);
    rawKeys.add(moveRecord);
    for (const shard of ['shard-1', 'shard-2']) rawKeys.add(removalRecordKey(PREFIX, id, shard));
    etcdPutKey(
      moveRecord,
      JSON.stringify({
        from: 'shard-1',
        to: 'shard-2',
        status: 'active',
        keepSource: false,
        startedAt: new Date().toISOString(),
      }),
    );
    const removed = ctl(['tenants', 'remove', id, '--yes'], { SHARDGATE_DB_PASSWORD: dbPassword() });
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain(
      'the record of its interrupted move from shard shard-1 to shard-2 was deleted',
    );
    expect(etcdGetKey(moveRecord)).toBeUndefined();
    // shard-1 was counted (no rows: no record); shard-2 was not
    expect(etcdGetKey(removalRecordKey(PREFIX, id, 'shard-1'))).toBeUndefined();
    expect(JSON.parse(etcdGetKey(removalRecordKey(PREFIX, id, 'shard-2'))!)).toMatchObject({
      rows: 'unchecked',
    });
    const blind = withoutPassword(() => ctl(['tenants', 'create', id, '--shard', 'shard-2']));
    expect(blind.code).toBe(1);
    expect(blind.stderr).toContain(`tenant id ${id} was removed from shard shard-2 at `);
  });

  it('create and remove delete what an earlier tenant of the id left in the cache; Redis down is a warning', async () => {
    const id = `ct-cache-${randomBytes(4).toString('hex')}`;
    const redis = new Redis(`redis://${topology.host}:${topology.redis.port}`, { lazyConnect: true });
    await redis.connect();
    try {
      // what an earlier tenant of this id (moved away, rows deleted) left: served by whatever
      // tenant of the id is on shard-2 until it expires
      const left = [`sg:{${id}}:shard-2:v:book:x`, `sg:{${id}}:shard-2:e:book:x:0-1-5`];
      for (const key of left) await redis.set(key, 'old', 'EX', 600);
      await redis.set(`sg:{${id}-other}:shard-2:v:book:x`, 'another id', 'EX', 600);
      // with the password, so the rows are checked (none) and nothing is warned about
      const withPassword = { SHARDGATE_DB_PASSWORD: dbPassword() };
      const created = ctl(['tenants', 'create', id, '--shard', 'shard-2'], withPassword);
      expect(created.stderr).toBe('');
      expect(created.code).toBe(0);
      expect(created.stdout).toContain(`deleted 2 cache keys of tenant id ${id} on shard shard-2`);
      expect(await redis.exists(...left)).toBe(0);
      expect(await redis.exists(`sg:{${id}-other}:shard-2:v:book:x`)).toBe(1);

      await redis.set(`sg:{${id}}:shard-1:v:books`, 'old', 'EX', 600);
      const removed = ctl(['tenants', 'remove', id, '--yes']);
      expect(removed.code).toBe(0);
      expect(removed.stdout).toContain(`deleted 1 cache keys of tenant id ${id}`);
      expect(await redis.exists(`sg:{${id}}:shard-1:v:books`)).toBe(0);

      // Redis not answering: created all the same, with a warning naming what is left
      const unreachable = ctl(['tenants', 'create', id, '--shard', 'shard-2'], {
        ...withPassword,
        SHARDGATE_REDIS_URL: 'redis://127.0.0.1:1',
      });
      expect(unreachable.code).toBe(0);
      expect(unreachable.stderr.trim().split('\n')).toHaveLength(1);
      expect(unreachable.stderr).toContain(`the cache keys of tenant id ${id} could not be deleted`);
      expect(etcdGet(`tenants/${id}`)).toBe('{"shard":"shard-2","status":"active"}');
    } finally {
      await redis.unlink(`sg:{${id}-other}:shard-2:v:book:x`);
      redis.disconnect();
      if (etcdGet(`tenants/${id}`)) ctl(['tenants', 'remove', id, '--yes']);
    }
  });

  it('--help says the rows stay', () => {
    const r = ctl(['tenants', 'remove', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('its rows stay on its shard');
    expect(r.stdout).toContain('--yes');
  });
});

describe('shardgate-ctl tenants list|show of entries the schema rejects', () => {
  it('lists every entry, marking each rejected one with its problem', async () => {
    const good = await newTenant('listed');
    const orphan = unique('orphan');
    const missingShard = unique('gone');
    const notJson = unique('notjson');
    const badStatus = unique('badstatus');
    const badId = `ct-Bad-${randomBytes(3).toString('hex')}`;
    put(`tenants/${orphan}`, JSON.stringify({ shard: missingShard, status: 'active' }));
    put(`tenants/${notJson}`, '{"shard": "shard-1",');
    put(`tenants/${badStatus}`, JSON.stringify({ shard: 'shard-1', status: 'frozen' }));
    put(`tenants/${badId}`, JSON.stringify({ shard: 'shard-1', status: 'active' }));
    try {
      const r = ctl(['tenants', 'list', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const rows = JSON.parse(r.stdout) as {
        id: string;
        shard: string | null;
        status: string | null;
        problem?: string;
        value?: string;
      }[];
      const byId = new Map(rows.map((row) => [row.id, row]));
      expect(byId.get(good)).toEqual({ id: good, shard: 'shard-1', status: 'active' });
      expect(byId.get(orphan)).toMatchObject({
        shard: missingShard,
        status: 'active',
        problem: `unknown shard "${missingShard}"`,
      });
      expect(byId.get(notJson)).toMatchObject({
        shard: null,
        status: null,
        problem: 'must be valid JSON',
        value: '{"shard": "shard-1",',
      });
      expect(byId.get(badStatus)).toMatchObject({ shard: 'shard-1', status: 'frozen' });
      expect(byId.get(badStatus)?.problem).toMatch(/^status: /);
      expect(byId.get(badId)?.problem).toMatch(/must match/);

      const text = ctl(['tenants', 'list']);
      expect(text.code).toBe(0);
      const line = (id: string) => text.stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
      expect(line(good)).not.toContain('problem');
      expect(line(orphan)).toContain(`problem: unknown shard "${missingShard}"`);
      expect(line(notJson)).toContain('problem: must be valid JSON');
      expect(line(badStatus)).toContain('problem: status: ');
      expect(line(badId)).toContain('problem: id ');
      expect(text.stdout).toMatch(/\d+ of \d+ entries have a problem/);

      const show = ctl(['tenants', 'show', orphan, '--json']);
      expect(show.code).toBe(0);
      expect(JSON.parse(show.stdout)).toMatchObject({
        id: orphan,
        problem: `unknown shard "${missingShard}"`,
      });
      expect(ctl(['tenants', 'show', orphan]).stdout).toContain(`problem: unknown shard "${missingShard}"`);

      // the command may be what fixes a bad status; a non-JSON entry it cannot read
      const fixed = ctl(['tenants', 'set-status', badStatus, 'active']);
      expect(fixed.code, fixed.stderr).toBe(0);
      expect(fixed.stdout).toMatch(
        new RegExp(
          `^tenant ${badStatus}: rejected \\(status: [^\\n]*\\), with no good value in etcd's history \\(never valid, or compacted away[^\\n]*\\) -> active\\n`,
        ),
      );
      const unreadable = ctl(['tenants', 'set-status', notJson, 'active']);
      expect(unreadable.code).toBe(1);
      expect(unreadable.stderr).toMatch(ONE_LINE);
      expect(unreadable.stderr).toContain('is not a JSON object');
      // a rejected entry can be removed
      const removed = ctl(['tenants', 'remove', notJson, '--yes']);
      expect(removed.code, removed.stderr).toBe(0);
      expect(etcdGet(`tenants/${notJson}`)).toBeUndefined();
    } finally {
      for (const key of [orphan, notJson, badStatus, badId]) cleanUp(`tenants/${key}`);
    }
  });

  it('cuts a rejected entry’s long value and name in list and show, saying how long they are', () => {
    // an outside check: a 1 MB name printed a 1,000,316-byte line, 2 MB in show
    const id = unique('longname');
    const name = 'n'.repeat(50_000);
    const raw = JSON.stringify({ shard: 'shard-1', status: 'active', name });
    put(`tenants/${id}`, raw);
    try {
      const text = ctl(['tenants', 'list']);
      expect(text.code, text.stderr).toBe(0);
      const line = text.stdout.split('\n').find((l) => l.startsWith(`${id} `)) ?? '';
      expect(line.length).toBeGreaterThan(0);
      expect(line.length).toBeLessThan(1000);
      expect(line).toContain('… (50000 characters)');
      const show = ctl(['tenants', 'show', id]);
      expect(show.code, show.stderr).toBe(0);
      expect(show.stdout.length).toBeLessThan(2000);
      expect(show.stdout).toContain(`… (${raw.length} characters)`);
      const json = JSON.parse(ctl(['tenants', 'show', id, '--json']).stdout) as {
        value: string;
        valueLength: number;
      };
      expect(json.valueLength).toBe(raw.length);
      expect(json.value.length).toBeLessThan(400);
    } finally {
      cleanUp(`tenants/${id}`);
    }
  });

  it('never prints an escape sequence it read from etcd: list, show, status and --json quote it', () => {
    // anyone who may write etcd can put ESC into a key or a value; a terminal would run it
    const key = `${unique('esc')}\x1b[31mX`;
    const value = unique('escval');
    put(`tenants/${key}`, JSON.stringify({ shard: 'shard-1', status: 'active' }));
    put(`tenants/${value}`, '{"shard":"shard-1","name":"evil\x1b[31mRED\x1b[0m\u009b2J"');
    try {
      const runs = [
        ctl(['tenants', 'list']),
        ctl(['tenants', 'list', '--json']),
        ctl(['tenants', 'show', value]),
        ctl(['tenants', 'show', value, '--json']),
        ctl(['status']),
      ];
      for (const r of runs) {
        const printed = `${r.stdout}${r.stderr}`;
        expect([printed.includes('\x1b'), printed.includes('\x9b')]).toEqual([false, false]);
      }
      expect(runs[0]!.stdout).toContain(key.replace('\x1b', '\\u001b'));
      expect(runs[2]!.stdout).toContain('evil\\u001b[31mRED');
      const listed = JSON.parse(runs[1]!.stdout) as { id: string }[];
      expect(listed.map((row) => row.id)).toContain(key);
      expect((JSON.parse(runs[3]!.stdout) as { value?: string }).value).toContain('\x9b2J');
      // an export to stdout, quoted for the terminal, applies back as no change
      const exported = ctl(['config', 'export']);
      expect(exported.stdout.includes('\x1b')).toBe(false);
      const file = join(mkdtempSync(join(tmpdir(), 'ct-export-')), 'export.yaml');
      writeFileSync(file, exported.stdout);
      const applied = ctl(['config', 'apply', '-f', file, '--dry-run']);
      expect([applied.code, applied.stdout], applied.stderr).toEqual([0, 'no changes\n']);
    } finally {
      cleanUp(`tenants/${key}`);
      cleanUp(`tenants/${value}`);
    }
  });

  it('a newline in a key read from etcd is written as an escape: it forges no row in list or status, nor a blank a column of list', () => {
    // an outside check: the key's second half printed as a tenant row that awk matched; a review:
    // blanks in an id forged the columns of its own row
    const forged = unique('forged');
    const key = `${unique('nl')}\n${forged}   shard-2  suspended`;
    const blanks = `${unique('sp')} shard-2 active`;
    put(`tenants/${key}`, JSON.stringify({ shard: 'nope', status: 'active' }));
    put(`tenants/${blanks}`, JSON.stringify({ shard: 'nope', status: 'active' }));
    try {
      for (const args of [['tenants', 'list'], ['status']]) {
        const r = ctl(args);
        const lines = r.stdout.split('\n');
        expect(
          lines.filter((l) => l.startsWith(forged)),
          args.join(' '),
        ).toEqual([]);
        const shown = args[0] === 'tenants' ? key.replace(/ /g, '\\u0020') : key;
        expect(r.stdout, args.join(' ')).toContain(shown.replace('\n', '\\u000a'));
      }
      const row = ctl(['tenants', 'list'])
        .stdout.split('\n')
        .find((l) => l.startsWith(blanks.split(' ')[0]!));
      expect(row?.split(/ +/)[0]).toBe(blanks.replace(/ /g, '\\u0020'));
      expect(row?.split(/ +/)[1]).toBe('nope');
    } finally {
      cleanUp(`tenants/${key}`);
      cleanUp(`tenants/${blanks}`);
    }
  });

  it('a tenant whose entry turned invalid shows its last good shard and status, the ones in force', async () => {
    // before: `?` for both, while the instances kept serving it from its shard
    const id = await newTenant('lastgood', 'shard-2');
    put(`tenants/${id}`, JSON.stringify({ shard: 'shard-2', status: 'readonly' }));
    put(`tenants/${id}`, '{"shard":"shard-1","status":"active",}');
    const rows = JSON.parse(ctl(['tenants', 'list', '--json']).stdout) as Record<string, unknown>[];
    expect(rows.find((r) => r.id === id)).toEqual({
      id,
      shard: 'shard-2',
      status: 'readonly',
      problem: 'must be valid JSON; keeping last good value',
      value: '{"shard":"shard-1","status":"active",}',
      lastGood: true,
    });
    const line = ctl(['tenants', 'list'])
      .stdout.split('\n')
      .find((l) => l.startsWith(`${id} `));
    expect(line).toMatch(
      / shard-2 +readonly +problem: must be valid JSON; keeping last good value \(the shard and status shown, in force\)$/,
    );
    const show = ctl(['tenants', 'show', id]).stdout;
    expect(show).toContain('  shard:  shard-2\n  status: readonly\n');
    expect(show).toContain('  master: 127.0.0.1:3326\n');
    expect(show).toContain('its last good value, which the instances enforce');
    // the instances agree: readonly on shard-2 (a write is refused with 423, a read answers)
    expect(await answers(id)).toEqual(INSTANCES.map(() => 200));
    // set-status cannot read the entry: it names a put that fixes it, with the shard in force
    const r = ctl(['tenants', 'set-status', id, 'active']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(
      `\`etcdctl put ${PREFIX}tenants/${id} '{"shard":"shard-2","status":"active"}'\``,
    );
  });

  it("set-status of a rejected entry names a put that keeps the entry's display name", () => {
    // an outside check: the suggested put dropped "name", which the tenant's mails carry
    const id = unique('named');
    put(`tenants/${id}`, JSON.stringify({ shard: 'no-such-shard', status: 'active', name: 'Acme Library' }));
    try {
      const r = ctl(['tenants', 'set-status', id, 'readonly']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain(
        `\`etcdctl put ${PREFIX}tenants/${id} '{"shard":"<shard>","status":"readonly","name":"Acme Library"}'\``,
      );
    } finally {
      cleanUp(`tenants/${id}`);
    }
  });

  it('show --json of an unknown tenant reports like every command: one stderr line, exit 1, no stdout', () => {
    const ghost = unique('ghost');
    const r = ctl(['tenants', 'show', ghost, '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toBe(
      `shardgate-ctl: tenants show: unknown tenant ${ghost} (see shardgate-ctl tenants show --help)\n`,
    );
    // the same shape as another read command's --json refusal
    const other = ctl(['breakers', 'get', 'bogus', '--json']);
    expect(other.code).toBe(1);
    expect(other.stdout).toBe('');
    expect(other.stderr).toMatch(ONE_LINE);
  });

  it('an id that could never be a tenant is named as such by show, set-status, remove and move', () => {
    for (const args of [
      ['tenants', 'show', 'BAD ID!'],
      ['tenants', 'set-status', 'BAD ID!', 'readonly'],
      ['tenants', 'remove', 'BAD ID!', '--yes'],
      ['tenants', 'move', 'BAD ID!', '--to', 'shard-2'],
    ]) {
      const r = ctl(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toMatch(ONE_LINE);
      expect(r.stderr, args.join(' ')).toContain(
        'unknown tenant "BAD ID!": not a valid tenant id either (must match ',
      );
    }
  });
});

describe('shardgate-ctl shards: the addresses written must take a TCP connection', () => {
  it('shards add refuses an unreachable master or replica, naming it, unless --force', () => {
    const id = unique('shard');
    const key = `shards/${id}`;
    created.add(key);
    try {
      const refused = ctl(['shards', 'add', id, '--master', CLOSED]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(ONE_LINE);
      expect(refused.stderr).toContain(`shards add: master ${CLOSED} unreachable (`);
      expect(refused.stderr).toContain('ECONNREFUSED');
      expect(refused.stderr).toContain('--force');
      expect(etcdGet(key)).toBeUndefined();

      const replica = ctl(['shards', 'add', id, '--master', '127.0.0.1:3316', '--replica', CLOSED]);
      expect(replica.code).toBe(1);
      expect(replica.stderr).toMatch(ONE_LINE);
      expect(replica.stderr).toContain(`replica ${CLOSED} unreachable`);
      expect(replica.stderr).not.toContain('master');
      expect(etcdGet(key)).toBeUndefined();

      const forced = ctl(['shards', 'add', id, '--master', CLOSED, '--force']);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toBe(
        `shardgate-ctl: shards add: warning: master ${CLOSED} unreachable (connect ECONNREFUSED ${CLOSED}); writing it anyway (--force)\n`,
      );
      expect(JSON.parse(etcdGet(key)!).master).toEqual({ host: '127.0.0.1', port: 3999 });
      // the master is not asked again for its schema
      expect(forced.stdout).toContain('(not checked: its master was unreachable)');
      cleanUp(key);

      // only a replica unreachable: the master's schema is still looked at
      const replicaForced = ctl(
        ['shards', 'add', id, '--master', '127.0.0.1:3316', '--replica', CLOSED, '--force'],
        stackEnv(),
      );
      expect(replicaForced.code).toBe(0);
      expect(replicaForced.stderr).toContain(`warning: replica ${CLOSED} unreachable`);
      expect(replicaForced.stdout).toMatch(/schema: up to date \(\d+ migrations applied there\)/);
    } finally {
      cleanUp(key);
    }
  });

  it('shards add of reachable addresses writes with no warning; set-master and add-replica check too', () => {
    const id = unique('shard');
    const key = `shards/${id}`;
    created.add(key);
    try {
      // the local stack's shard-1 servers, which are up: no reachability warning, only the one
      // that shard-1 names the same database
      const added = ctl(
        ['shards', 'add', id, '--master', '127.0.0.1:3316', '--replica', '127.0.0.1:3317'],
        stackEnv(),
      );
      expect(added.stderr).toBe(sharedWarning(id));
      expect(added.code).toBe(0);
      // shard-1's database is migrated: nothing more to do (before: "next: put the schema on it")
      expect(added.stdout).toMatch(/^schema: up to date \(\d+ migrations applied there\)\n$/m);
      expect(added.stdout).not.toContain('next:');
      const written = etcdGet(key)!;

      const master = ctl(['shards', 'set-master', id, CLOSED]);
      expect(master.code).toBe(1);
      expect(master.stderr).toMatch(ONE_LINE);
      expect(master.stderr).toContain(`shards set-master: master ${CLOSED} unreachable`);
      const replica = ctl(['shards', 'add-replica', id, CLOSED]);
      expect(replica.code).toBe(1);
      expect(replica.stderr).toMatch(ONE_LINE);
      expect(replica.stderr).toContain(`shards add-replica: replica ${CLOSED} unreachable`);
      expect(etcdGet(key)).toBe(written);

      const forcedReplica = ctl(['shards', 'add-replica', id, CLOSED, '--force']);
      expect(forcedReplica.code).toBe(0);
      expect(forcedReplica.stderr).toMatch(
        /^shardgate-ctl: shards add-replica: warning: replica 127\.0\.0\.1:3999 /,
      );
      expect(JSON.parse(etcdGet(key)!).replicas).toHaveLength(2);
      const forcedMaster = ctl(['shards', 'set-master', id, CLOSED, '--force']);
      expect(forcedMaster.code).toBe(0);
      expect(forcedMaster.stderr).toContain('warning: master 127.0.0.1:3999 unreachable');
      expect(JSON.parse(etcdGet(key)!).master).toEqual({ host: '127.0.0.1', port: 3999 });
    } finally {
      cleanUp(key);
    }
  });

  it('the check is a TCP connect only: a wrong database password does not matter', () => {
    const id = unique('shard');
    const key = `shards/${id}`;
    created.add(key);
    try {
      const r = ctl(['shards', 'add', id, '--master', '127.0.0.1:3316'], {
        SHARDGATE_DB_PASSWORD: 'not-the-password',
      });
      expect(r.stderr).toBe(sharedWarning(id));
      expect(r.code).toBe(0);
    } finally {
      cleanUp(key);
    }
  });
});

/** the warning of `shards add` at shard-1's master: a second id of its database */
function sharedWarning(id: string): string {
  return `shardgate-ctl: shards add: warning: shard ${id}'s master 127.0.0.1:3316 database shardgate is shard shard-1's too: both ids name the same rows (tenants move between them is refused)\n`;
}

describe('shardgate-ctl shards: replicas', () => {
  it('shards add refuses a replica given twice, or equal to the master; add-replica refuses the master', () => {
    const id = unique('shard');
    const key = `shards/${id}`;
    created.add(key);
    try {
      const twice = ctl([
        'shards',
        'add',
        id,
        '--master',
        '127.0.0.1:3316',
        '--replica',
        '127.0.0.1:3317',
        '--replica',
        '127.0.0.1:3317@3',
      ]);
      expect(twice.stderr).toBe(
        'shardgate-ctl: shards add: --replica 127.0.0.1:3317 is given twice (see shardgate-ctl shards add --help)\n',
      );
      expect(twice.code).toBe(1);
      expect(etcdGet(key)).toBeUndefined();
      const own = ctl(['shards', 'add', id, '--master', '127.0.0.1:3316', '--replica', '127.0.0.1:3316']);
      expect(own.stderr).toMatch(ONE_LINE);
      expect(own.stderr).toContain("--replica 127.0.0.1:3316 is the shard's master (--master)");
      expect(own.code).toBe(1);
      expect(etcdGet(key)).toBeUndefined();

      expect(ctl(['shards', 'add', id, '--master', '127.0.0.1:3316']).code).toBe(0);
      const written = etcdGet(key);
      const master = ctl(['shards', 'add-replica', id, '127.0.0.1:3316']);
      expect(master.stderr).toBe(
        `shardgate-ctl: shards add-replica: replica 127.0.0.1:3316 is the master of shard ${id}: a server cannot be its own replica (see shardgate-ctl shards add-replica --help)\n`,
      );
      expect(master.code).toBe(1);
      expect(etcdGet(key)).toBe(written);
    } finally {
      cleanUp(key);
    }
  });
});

/**
 * The local stack's two shards, ordered by their masters' GTID sequence numbers (domain 0): the
 * replica of `ahead` has applied transactions the master of `behind` does not have. MariaDB
 * positions compare by sequence number per domain only, so a replica of the other shard is seen
 * as not following only in that direction (control-plane/replica-follows.ts).
 */
async function shardsBySeq(): Promise<{ ahead: ShardServers; behind: ShardServers }> {
  const seqs = await Promise.all(
    topology.shards.map(async (s) => {
      const [row] = await rootQuery<{ pos: string }>(s.master.port, 'SELECT @@GLOBAL.gtid_binlog_pos AS pos');
      const seq = /(?:^|,)0-\d+-(\d+)/.exec(row?.pos ?? '')?.[1];
      return {
        seq: Number(seq ?? 0),
        master: `127.0.0.1:${s.master.port}`,
        replica: `127.0.0.1:${s.replicas[0]!.port}`,
        id: s.id,
      };
    }),
  );
  const [a, b] = seqs.sort((x, y) => y.seq - x.seq);
  expect(a!.seq, 'the two masters are at different sequence numbers').toBeGreaterThan(b!.seq);
  return { ahead: a!, behind: b! };
}
interface ShardServers {
  id: string;
  master: string;
  replica: string;
}

describe('shardgate-ctl shards: a replica must replicate from the shard master', () => {
  // an outside check: shard-1's replica added to a shard whose master is shard-2's, exit 0 and no
  // warning; set-master to a server the replicas never followed, exit 0 and silent
  it('add-replica refuses a replica ahead of the master, naming both positions, unless --force; takes the right one silently', async () => {
    const { ahead, behind } = await shardsBySeq();
    const id = unique('follow');
    const key = `shards/${id}`;
    created.add(key);
    try {
      const added = ctl(['shards', 'add', id, '--master', behind.master]);
      expect(added.code, added.stderr).toBe(0);
      const written = etcdGet(key);

      const refused = ctl(['shards', 'add-replica', id, ahead.replica], ENV);
      expect(refused.stderr).toMatch(ONE_LINE);
      expect(refused.stderr).toMatch(
        new RegExp(
          `^shardgate-ctl: shards add-replica: replica ${esc(ahead.replica)} has applied transactions master ${esc(behind.master)} does not have \\(replica 0-\\d+-\\d+, master 0-\\d+-\\d+\\): it does not replicate from this shard's master; nothing written \\(--force to write it anyway\\)`,
        ),
      );
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(etcdGet(key)).toBe(written);

      const right = ctl(['shards', 'add-replica', id, behind.replica], ENV);
      expect(right.stderr).toBe('');
      expect(right.code).toBe(0);
      expect(JSON.parse(etcdGet(key)!).replicas).toEqual([{ ...hostPort(behind.replica), weight: 1 }]);

      const forced = ctl(['shards', 'add-replica', id, ahead.replica, '--force'], ENV);
      expect(forced.code).toBe(0);
      expect(forced.stderr).toMatch(
        new RegExp(
          `^shardgate-ctl: shards add-replica: warning: replica ${esc(ahead.replica)} has applied transactions master ${esc(behind.master)} does not have \\(replica [^)]+\\): it does not replicate from this shard's master; writing it anyway \\(--force\\)\n$`,
        ),
      );
      expect(JSON.parse(etcdGet(key)!).replicas).toHaveLength(2);
    } finally {
      cleanUp(key);
    }
  });

  it("add-replica refuses a server that replicates from nothing (another shard's master), saying so", async () => {
    // an outside check: shard-2's master added as shard-1's replica, and the reverse, exit 0 with no
    // warning: its applied position is empty, which any master's position contains
    const { ahead, behind } = await shardsBySeq();
    for (const [master, stranger] of [
      [behind.master, ahead.master],
      [ahead.master, behind.master],
    ] as const) {
      const id = unique('norepl');
      const key = `shards/${id}`;
      created.add(key);
      try {
        expect(ctl(['shards', 'add', id, '--master', master]).code).toBe(0);
        const written = etcdGet(key);
        const refused = ctl(['shards', 'add-replica', id, stranger], ENV);
        expect(refused.code, refused.stderr).toBe(1);
        expect(refused.stderr).toMatch(ONE_LINE);
        expect(refused.stderr).toContain(
          `${stranger} is not a replica: it has no replication configured (SHOW SLAVE STATUS answers no row), so it does not replicate from master ${master}; nothing written (--force to write it anyway)`,
        );
        expect(etcdGet(key)).toBe(written);
      } finally {
        cleanUp(key);
      }
    }
  });

  it('add-replica writes a replica it cannot check (a login refused, as without SHARDGATE_DB_PASSWORD) with a warning: adding one needs etcd only', () => {
    const id = unique('follow');
    const key = `shards/${id}`;
    created.add(key);
    try {
      expect(ctl(['shards', 'add', id, '--master', '127.0.0.1:3316']).code).toBe(0);
      const r = ctl(['shards', 'add-replica', id, '127.0.0.1:3317'], {
        SHARDGATE_DB_PASSWORD: 'not-the-password',
      });
      expect(r.stderr).toMatch(
        /^shardgate-ctl: shards add-replica: warning: whether replica 127\.0\.0\.1:3317 replicates from master 127\.0\.0\.1:3316 could not be checked \(.*Access denied.*\); written all the same \(the instances do not read from a replica ahead of its master\)\n$/,
      );
      expect(r.stderr).not.toContain('not-the-password');
      expect(r.code).toBe(0);
      expect(JSON.parse(etcdGet(key)!).replicas).toHaveLength(1);
    } finally {
      cleanUp(key);
    }
  });

  it('set-master to a server a staying replica is ahead of warns, naming it, and writes', async () => {
    const { ahead, behind } = await shardsBySeq();
    const id = unique('follow');
    const key = `shards/${id}`;
    created.add(key);
    try {
      const added = ctl(['shards', 'add', id, '--master', ahead.master, '--replica', ahead.replica]);
      expect(added.code, added.stderr).toBe(0);
      const r = ctl(['shards', 'set-master', id, behind.master], ENV);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(
            `^shardgate-ctl: shards set-master: warning: replica ${esc(ahead.replica)} has applied transactions the new master ${esc(behind.master)} does not have \\(replica 0-\\d+-\\d+, master 0-\\d+-\\d+\\): it will not be read from until it is re-seeded from the new master$`,
          ),
        ),
      );
      // the only other line: the new master's database is the other shard's too
      expect(lines.filter((l) => !l.includes('re-seeded'))).toEqual([
        `shardgate-ctl: shards set-master: warning: shard ${id}'s master ${behind.master} database shardgate is shard ${behind.id}'s too: both ids name the same rows (tenants move between them is refused)`,
      ]);
      expect(JSON.parse(etcdGet(key)!).master).toEqual(hostPort(behind.master));
    } finally {
      cleanUp(key);
    }
  });
});

const ENV = { SHARDGATE_DB_PASSWORD: dbPassword() };
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const hostPort = (address: string) => {
  const [host, port] = address.split(':');
  return { host, port: Number(port) };
};

describe('shardgate-ctl shards list', () => {
  it('sizes its columns to the content: a long id does not push its row out of line', () => {
    const id = `ct-a-rather-long-shard-id-${randomBytes(3).toString('hex')}`;
    const key = `shards/${id}`;
    created.add(key);
    try {
      expect(ctl(['shards', 'add', id, '--master', '127.0.0.1:3316']).code).toBe(0);
      const r = ctl(['shards', 'list']);
      expect(r.code).toBe(0);
      const lines = r.stdout.trimEnd().split('\n');
      expect(lines.find((l) => l.startsWith(`${id} `))).toBeDefined();
      const columns = new Set(lines.map((l) => [l.indexOf(' master '), l.indexOf('  replicas ')].join()));
      expect(columns.size, r.stdout).toBe(1);
    } finally {
      cleanUp(key);
    }
  });
});
