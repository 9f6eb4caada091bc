/**
 * shardgate-ctl against the real etcd of the local stack: exit codes, export/apply round trip,
 * validation before any write, and instances reporting the config revision they applied.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { ETCD_MAX_TXN_OPS, etcdArgs } from '../stack/etcd.js';
import { REPO_ROOT } from '../stack/paths.js';
import { INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { ETCD_ENDPOINT, etcdDel, etcdGet, etcdOverride, etcdPut, PREFIX } from './helpers/etcd.js';
import { uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-ctl-'));
const restores: (() => void)[] = [];
/** keys of `ct-` ids this file created; each is deleted on its own at the end (never a range) */
const created = new Set<string>();
afterAll(() => {
  for (const r of restores.reverse()) r();
  for (const key of created) if (etcdGet(key) !== undefined) etcdDel(key);
});

/** a tenant of a fresh `ct-` id on shard-1, made with the CLI */
function newTenant(label: string): string {
  const id = `ct-${label}-${randomBytes(3).toString('hex')}`;
  created.add(`tenants/${id}`);
  const r = ctl(['tenants', 'create', id, '--shard', 'shard-1']);
  expect(r.code, r.stderr).toBe(0);
  return id;
}

/** CONTRACT.md §5: a user error is exactly one line on stderr, naming the command and the culprit. */
const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;

describe('shardgate-ctl', () => {
  it('export then apply --dry-run of the same file prints "no changes"', () => {
    const file = join(dir, 'cfg.yaml');
    const exp = ctl(['config', 'export', '-o', file]);
    expect(exp.code).toBe(0);
    const r = ctl(['config', 'apply', '-f', file, '--dry-run']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('no changes');
    expect(r.code).toBe(0);
  });

  it('applying a file with an invalid value changes nothing in etcd and names the key', () => {
    const file = join(dir, 'cfg.yaml');
    ctl(['config', 'export', '-o', file]);
    const before = etcdGet('cache/ttl_seconds');
    const text = readFileSync(file, 'utf8')
      .replace(/ttl_seconds: \d+/, 'ttl_seconds: 31')
      .replace(/failure_threshold: \d+/, 'failure_threshold: banana');
    writeFileSync(join(dir, 'bad.yaml'), text);
    const r = ctl(['config', 'apply', '-f', join(dir, 'bad.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/invalid \/shardgate\/breakers\/default\/failure_threshold: .*nothing written/);
    expect(etcdGet('cache/ttl_seconds')).toBe(before);
  });

  it('applies a valid change and prints the diff', () => {
    restores.push(etcdOverride('cache/ttl_seconds', '60'));
    const file = join(dir, 'ttl.yaml');
    writeFileSync(file, 'cache:\n  ttl_seconds: 45\n');
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('~ cache/ttl_seconds: 60 -> 45');
    expect(etcdGet('cache/ttl_seconds')).toBe('45');
  });

  it('refuses invalid single writes with exit 1 and one line', () => {
    for (const args of [
      ['lb', 'weight', 'api-1', '300'],
      ['breakers', 'set', 'redis', 'failure_threshold', 'x'],
      ['tenants', 'create', 'Bad_Id'],
      ['tenants', 'create', 'ctl-nowhere', '--shard', 'no-such-shard'],
      ['shards', 'remove', 'no-such-shard'],
    ]) {
      const r = ctl(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr, args.join(' ')).toMatch(ONE_LINE);
    }
    // an id no shard could have says so, as a tenant's does (an outside check read it as a typo)
    expect(ctl(['shards', 'remove', 'BAD ID']).stderr).toContain(
      'unknown shard "BAD ID": not a valid shard id either (must match',
    );
  });

  it('is not stopped by a malformed variable it does not read; one it reads is named', () => {
    // the API's and the worker's variables: many tools set PORT, and an empty value is common
    const others = {
      PORT: '',
      SHARDGATE_MODE: 'bogus',
      SHARDGATE_JWT_SECRET: 'short',
      SHARDGATE_SMTP_URL: 'nope',
      SHARDGATE_DRAIN_MS: '-1',
    };
    const ok = ctl(['lb', 'weights'], others);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toContain('api-1');
    const bad = ctl(['lb', 'weights'], { ...others, SHARDGATE_REDIS_URL: 'nope' });
    expect([bad.code, bad.stdout]).toEqual([1, '']);
    expect(bad.stderr).toMatch(
      /^shardgate-ctl: lb weights: invalid environment variable SHARDGATE_REDIS_URL: [^\n]+\n$/,
    );
  });

  it('refuses a bad command line with exit 1 and one line naming the command and the culprit', () => {
    for (const [args, expected] of [
      [['tenants', 'create'], "tenants create: missing required argument 'id'"],
      [['breakers', 'set', 'redis', 'failure_threshold'], "breakers set: missing required argument 'value'"],
      [['bogus'], "shardgate-ctl: unknown command 'bogus' (see shardgate-ctl --help)"],
      [['tenants', 'bogus'], "tenants: unknown command 'bogus' (see shardgate-ctl tenants --help)"],
      [['lb', 'sync', '--json'], "lb sync: unknown option '--json' (see shardgate-ctl lb sync --help)"],
      [['config', 'apply', '--dry-run'], "config apply: required option '-f, --file <file>' not specified"],
      [
        ['shards', 'add', 'ctl-v6', '--master', '::1:3316'],
        'shards add: invalid --master "::1:3316": expected host:port (an IPv6 address in brackets: [::1]:3306)',
      ],
      // commander would keep the last one silently
      [
        ['tenants', 'create', 'ctl-twice', '--shard', 'shard-1', '--shard', 'shard-2'],
        "tenants create: option '--shard <id>' given 2 times; give it once",
      ],
      // an IPv6 address in brackets is an address: here one where nothing listens
      [['shards', 'add', 'ctl-v6', '--master', '[::1]:1'], 'shards add: master [::1]:1 unreachable ('],
    ] as const) {
      const r = ctl([...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(ONE_LINE);
      expect(r.stderr, args.join(' ')).toContain(expected);
    }
  });

  it('names every invalid key of config apply in one line, and writes nothing', () => {
    const file = join(dir, 'two-bad.yaml');
    writeFileSync(file, 'cache:\n  ttl_seconds: 0\nbreakers:\n  default:\n    failure_threshold: banana\n');
    const before = etcdGet('cache/ttl_seconds');
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(
      /^shardgate-ctl: config apply: invalid \/shardgate\/breakers\/default\/failure_threshold: .*; invalid \/shardgate\/cache\/ttl_seconds: .*; nothing written \(see shardgate-ctl config apply --help\)\n$/,
    );
    expect(etcdGet('cache/ttl_seconds')).toBe(before);
  });

  it('config apply refuses a number written as a string, naming it once, and writes nothing', () => {
    const file = join(dir, 'quoted.yaml');
    writeFileSync(
      file,
      'cache:\n  ttl_seconds: "61"\nbreakers:\n  default:\n    failure_threshold: 99999999999999999999999\n',
    );
    const before = [etcdGet('cache/ttl_seconds'), etcdGet('breakers/default/failure_threshold')];
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(
      'invalid /shardgate/cache/ttl_seconds: a number or true/false written as a string ("61"); write it without quotes;',
    );
    // each reason once, though the value breaks two checks of one message
    expect(r.stderr.split('must be a whole number from 1 to 1000').length - 1).toBe(1);
    expect([etcdGet('cache/ttl_seconds'), etcdGet('breakers/default/failure_threshold')]).toEqual(before);
  });

  it('--help prints the usage on stdout and exits 0; so does a bare shardgate-ctl', () => {
    for (const args of [['--help'], ['tenants', 'create', '--help'], []]) {
      const r = ctl(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: shardgate-ctl /);
    }
  });

  it('exits 2 when etcd is unreachable', () => {
    const r = ctl(['status'], { SHARDGATE_ETCD_ENDPOINTS: 'http://127.0.0.1:1' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/etcd unreachable/);
  });

  it('status --json lists both instances with the config revision they applied, equal to etcd after a change', async () => {
    restores.push(etcdOverride('replication/ryw_timeout_ms', '250'));
    const status = await waitFor(
      () => {
        const s = JSON.parse(ctl(['status', '--json']).stdout) as {
          configRevision: number;
          instances: { id: string; configRevision: number }[];
        };
        const ids = s.instances.map((i) => i.id).sort();
        const caughtUp = s.instances.filter((i) => i.configRevision === s.configRevision);
        return ids.includes('api-1') && ids.includes('api-2') && caughtUp.length >= 2 ? s : undefined;
      },
      { timeoutMs: 5000, intervalMs: 250, what: 'instances at the new config revision' },
    );
    expect(status.instances.find((i) => i.id === 'api-1')?.configRevision).toBe(status.configRevision);
    // the build each runs: what npm run build wrote into the dist/ the stack runs (the package
    // version and a commit of this checkout), and the text says it too
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const built = JSON.parse(readFileSync(join(REPO_ROOT, 'dist', 'build-info.json'), 'utf8')) as {
      version: string;
      commit: string;
    };
    expect(built.version).toBe(version);
    expect(built.commit).toMatch(/^[0-9a-f]{12}(-dirty)?$/);
    const label = `${built.version}+${built.commit}`;
    for (const id of ['api-1', 'api-2'])
      expect((status.instances as { id: string; build?: string }[]).find((i) => i.id === id)?.build).toBe(
        label,
      );
    expect(ctl(['status']).stdout).toContain(`build ${label}`);
    // live replica lag, as a running instance measures it
    const full = JSON.parse(ctl(['status', '--json']).stdout) as {
      shards: { id: string; replicaLag: { state: string; lagSeconds: number | null }[] | null }[];
    };
    for (const shard of full.shards.filter((s) => s.id.startsWith('shard-'))) {
      expect(shard.replicaLag?.length, shard.id).toBeGreaterThan(0);
      expect(typeof shard.replicaLag?.[0]?.lagSeconds).toBe('number');
    }
  });

  it('status names a breaker the instances report open, and why a replica is excluded', async () => {
    // an outside check: a shard whose master was down showed nothing wrong in status while every
    // write of its tenants answered 503, and the text left out the reason --json gave
    const shard = `ct-dead-${randomBytes(3).toString('hex')}`;
    created.add(`shards/${shard}`);
    const made = ctl([
      'shards',
      'add',
      shard,
      '--master',
      '127.0.0.1:3999',
      '--replica',
      '127.0.0.1:3998',
      '--force',
    ]);
    expect(made.code, made.stderr).toBe(0);
    const tenant = uniqueTenantId('ct-dead');
    created.add(`tenants/${tenant}`);
    expect(ctl(['tenants', 'create', tenant, '--shard', shard]).code).toBe(0);
    const [api1] = INSTANCES as [string];
    const breaker = `mysql-master:${shard}`;
    const status = await waitFor(
      async () => {
        // writes to the dead master until its breaker opens on api-1
        await fetch(`${api1}/v1/members`, {
          method: 'POST',
          headers: { 'X-Tenant-ID': tenant, 'Content-Type': 'application/json' },
          body: JSON.stringify({ email: 'a@example.com', name: 'A', password: 'correct horse' }),
        }).then((r) => r.body?.cancel());
        const s = JSON.parse(ctl(['status', '--json']).stdout) as {
          openBreakers: { breaker: string; state: string; instances: string[] }[];
        };
        return s.openBreakers.find((b) => b.breaker === breaker && b.instances.includes('api-1'))
          ? s
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: `${breaker} reported open by api-1` },
    );
    expect(status.openBreakers.find((b) => b.breaker === breaker)?.state).toMatch(/^(open|half_open)$/);
    const text = ctl(['status']).stdout;
    expect(text).toMatch(
      new RegExp(`  ! ${breaker} (open|half_open) on [^\n]*api-1[^\n]*: its calls are refused at once`),
    );
    // the excluded replica with its reason, as --json gives it, and whose view the lag is
    expect(text).toMatch(/127\.0\.0\.1:3998\/shardgate +excluded +lag [^\n]+ \(.+\)/);
    expect(text).toMatch(/^shards \(replica lag as http:\/\/[^ ]+ measures it\):$/m);
    // a tenant that is not active is counted by its status (an outside check: nothing said so)
    expect(ctl(['tenants', 'set-status', tenant, 'suspended']).code).toBe(0);
    const counted = JSON.parse(ctl(['status', '--json']).stdout) as {
      tenantsNotActive: Record<string, number>;
    };
    expect(counted.tenantsNotActive.suspended).toBeGreaterThanOrEqual(1);
    expect(ctl(['status']).stdout).toMatch(/^tenants: \d+ \((\d+ readonly, )?\d+ suspended\)$/m);
    etcdDel(`tenants/${tenant}`);
    etcdDel(`shards/${shard}`);
  });

  it('status shows no instance behind after a put that changes nothing but the revision', async () => {
    const key = 'replication/ryw_timeout_ms';
    const restore = etcdOverride(key, etcdGet(key) ?? '200');
    restores.push(restore);
    // the same value again, then a rejected one: the revision moves, the config in force does not
    etcdPut(key, etcdGet(key)!);
    etcdPut(key, 'banana');
    const status = await waitFor(
      () => {
        const s = JSON.parse(ctl(['status', '--json']).stdout) as {
          configRevision: number;
          instances: { id: string; configRevision: number }[];
        };
        const live = s.instances.filter((i) => i.id === 'api-1' || i.id === 'api-2');
        return live.length === 2 && live.every((i) => i.configRevision >= s.configRevision) ? s : undefined;
      },
      { timeoutMs: 5000, intervalMs: 250, what: 'both instances at the revision of the rejected put' },
    );
    expect(ctl(['status']).stdout).not.toMatch(/api-[12] .*\(behind\)/);
    expect(status.configRevision).toBeGreaterThan(0);
    // the rejected value must not outlive this test: later ones apply exports of the prefix
    restore();
  });

  it('config apply refuses to undo an edit made in etcd after the file was exported, unless --force', () => {
    const file = join(dir, 'stale.yaml');
    expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
    const lag = etcdGet('replication/max_lag_seconds') ?? '5';
    restores.push(etcdOverride('replication/max_lag_seconds', String(Number(lag) + 1)));
    restores.push(etcdOverride('cache/ttl_seconds', etcdGet('cache/ttl_seconds') ?? '60'));
    writeFileSync(file, readFileSync(file, 'utf8').replace(/ttl_seconds: \d+/, 'ttl_seconds: 37'));
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /replication\/max_lag_seconds: changed in etcd at revision \d+, after the file was exported/,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(etcdGet('replication/max_lag_seconds')).toBe(String(Number(lag) + 1));
    expect(etcdGet('cache/ttl_seconds')).not.toBe('37');
    const forced = ctl(['config', 'apply', '-f', file, '--force']);
    expect(forced.code).toBe(0);
    expect(etcdGet('replication/max_lag_seconds')).toBe(lag);
    expect(etcdGet('cache/ttl_seconds')).toBe('37');
  });

  it('status shows the keys the instances reject with their own environment (SHARDGATE_DB_HOSTS), naming them', async () => {
    // the instances allow 127.0.0.1 only; this command is told localhost is fine too
    const key = `shards/ctl-dbh-${randomBytes(3).toString('hex')}`;
    created.add(key);
    etcdPut(
      key,
      '{"master":{"host":"127.0.0.1","port":3326},"replicas":[{"host":"localhost","port":3327}],"database":"shardgate"}',
    );
    const reason = 'replica localhost:3327 not in SHARDGATE_DB_HOSTS (127.0.0.1)';
    await waitFor(
      async () => {
        const rejected = await Promise.all(
          INSTANCES.map(async (base) => {
            const c = (await (await fetch(`${base}/health/config`)).json()) as {
              rejected: { key: string }[];
            };
            return c.rejected.some((r) => r.key === key);
          }),
        );
        return rejected.every(Boolean);
      },
      { timeoutMs: 2000, what: 'both instances to reject the shard' },
    );
    const lenient = ctl(['status'], { SHARDGATE_DB_HOSTS: '127.0.0.1,localhost' });
    expect(lenient.code).toBe(0);
    expect(lenient.stdout).toContain(`\nrejected by api-1, api-2 ${PREFIX}${key}: ${reason}`);
    const json = JSON.parse(
      ctl(['status', '--json'], { SHARDGATE_DB_HOSTS: '127.0.0.1,localhost' }).stdout,
    ) as {
      instances: { id: string; rejected: { key: string; reason: string }[] | null }[];
    };
    for (const i of json.instances.filter((x) => x.id === 'api-1' || x.id === 'api-2'))
      expect(i.rejected?.filter((r) => r.key === key).map((r) => r.reason.startsWith(reason))).toEqual([
        true,
      ]);
    // judged the same way here: one line, the command's own, not repeated per instance
    const strict = ctl(['status'], { SHARDGATE_DB_HOSTS: '127.0.0.1' });
    expect(strict.stdout).toContain(`\nrejected ${PREFIX}${key}: ${reason}`);
    expect(strict.stdout).not.toContain('rejected by');
    etcdDel(key);
  });

  it('status says what each instance answers, and names a weighted instance that is not registered', () => {
    restores.push(etcdOverride('lb/weights/api-9', '2'));
    const s = JSON.parse(ctl(['status', '--json']).stdout) as {
      instances: { id: string; health: string }[];
      unregisteredWeighted: string[];
    };
    expect(s.instances.filter((i) => i.id === 'api-1' || i.id === 'api-2').map((i) => i.health)).toEqual([
      'ready',
      'ready',
    ]);
    // contains: a weight key an interrupted run left behind would be listed too
    expect(s.unregisteredWeighted).toContain('api-9');
    expect(ctl(['status']).stdout).toMatch(/lb weights: .*\(not registered: api-9\)/);
  });

  it('config apply of an export that copied a rejected value says it stays rejected, instead of a bare "no changes"', () => {
    const key = `tenants/ct-rejected-${randomBytes(3).toString('hex')}`;
    created.add(key);
    etcdPut(key, 'not json');
    const file = join(dir, 'with-rejected.yaml');
    try {
      expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
      const r = ctl(['config', 'apply', '-f', file, '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('no changes\n');
      expect(r.stderr).toMatch(
        /^shardgate-ctl: config apply: warning: \d+ key\(s\) of .* stay rejected by the instances, unchanged: /,
      );
      expect(r.stderr).toContain(`/shardgate/${key} (must be valid JSON)`);
      expect(r.stderr.split('\n')).toHaveLength(2);
    } finally {
      etcdDel(key);
    }
    // the key fixed (here: gone), a fresh export says nothing of it
    expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
    expect(ctl(['config', 'apply', '-f', file, '--dry-run']).stderr).not.toContain(key);
  });

  it('init seeds the local topology only while etcd holds no shard: a removed key stays removed, a deleted setting comes back', async () => {
    const prefix = `/shardgate-init-${randomBytes(3).toString('hex')}/`;
    const env = { SHARDGATE_ETCD_PREFIX: prefix };
    const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    const keys = async () => (await client.getAll().prefix(prefix).keys()).map((k) => k.slice(prefix.length));
    try {
      expect(ctl(['init'], env).code).toBe(0);
      const seeded = await keys();
      expect(seeded).toEqual(
        expect.arrayContaining([
          'shards/shard-1',
          'placement',
          'lb/weights/api-1',
          'breakers/default/failure_threshold',
          'breakers/redis/call_timeout_ms',
        ]),
      );
      expect(await client.get(`${prefix}breakers/redis/call_timeout_ms`).string()).toBe('250');
      // an operator drops a weight (back to haproxy.cfg's), the placement and a default setting
      for (const key of ['lb/weights/api-1', 'placement', 'breakers/default/failure_threshold'])
        await client.delete().key(`${prefix}${key}`);
      const again = ctl(['init'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toContain('initialised 1 key(s)');
      const after = await keys();
      expect(after).toContain('breakers/default/failure_threshold');
      expect(after).not.toContain('lb/weights/api-1');
      expect(after).not.toContain('placement');
      expect(after.length).toBe(seeded.length - 2);
      // Redis's seeded timeout is not put back over an operator's lower default
      await client.put(`${prefix}breakers/default/call_timeout_ms`).value('100');
      await client.delete().key(`${prefix}breakers/redis/call_timeout_ms`);
      expect(ctl(['init'], env).stdout).toContain('nothing to do');
      expect(await keys()).not.toContain('breakers/redis/call_timeout_ms');
    } finally {
      // one key at a time, never a range
      for (const key of await keys()) await client.delete().key(`${prefix}${key}`);
      client.close();
    }
  });

  it('status under a prefix with no key warns that it may be the wrong prefix, and still answers', () => {
    const prefix = `/shardgate-nothing-${randomBytes(3).toString('hex')}/`;
    const r = ctl(['status'], { SHARDGATE_ETCD_PREFIX: prefix });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `shardgate-ctl: no key under ${prefix} in etcd: a cluster not seeded yet (shardgate-ctl init), or SHARDGATE_ETCD_PREFIX is not the instances' prefix\n`,
    );
    // the stack's own prefix has keys: no such line
    expect(ctl(['status']).stderr).toBe('');
  });

  it('config export --json names the etcd revision it read; apply refuses to undo a later edit unless --force', () => {
    const id = newTenant('json');
    const key = `tenants/${id}`;
    const file = join(dir, 'cfg.json');
    expect(ctl(['config', 'export', '--json', '-o', file]).code).toBe(0);
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { $etcdRevision?: unknown };
    expect(Number.isSafeInteger(doc.$etcdRevision)).toBe(true);

    // the field is no config key: the fresh export applies as "no changes", without a warning
    const same = ctl(['config', 'apply', '-f', file, '--dry-run']);
    expect(same.stderr).toBe('');
    expect(same.stdout).toBe('no changes\n');

    const edited = JSON.stringify({ shard: 'shard-1', status: 'readonly' });
    etcdPut(key, edited);
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(
      new RegExp(
        `refused /shardgate/${key}: changed in etcd at revision \\d+, after the file was exported at revision ${doc.$etcdRevision} `,
      ),
    );
    expect(r.code).toBe(1);
    expect(etcdGet(key)).toBe(edited);
    const forced = ctl(['config', 'apply', '-f', file, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(etcdGet(key)!).status).toBe('active');

    const bad = join(dir, 'bad-revision.json');
    writeFileSync(bad, JSON.stringify({ ...doc, $etcdRevision: 'yesterday' }));
    const refused = ctl(['config', 'apply', '-f', bad, '--dry-run']);
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain('$etcdRevision must be');
    expect(refused.code).toBe(1);

    // YAML would take the trailing comma of a hand edit; a .json file must be JSON
    const comma = join(dir, 'comma.json');
    writeFileSync(
      comma,
      `${JSON.stringify({ breakers: { redis: { failure_threshold: 7 } } }).slice(0, -1)},}`,
    );
    const invalid = ctl(['config', 'apply', '-f', comma, '--dry-run']);
    expect(invalid.stderr).toMatch(ONE_LINE);
    expect(invalid.stderr).toContain(`config apply: ${comma} is not valid JSON: `);
    expect(invalid.code).toBe(1);
  });

  it('config apply of a file with no export revision warns in one line that later edits go undetected, and applies it', () => {
    const id = newTenant('norev');
    const key = `tenants/${id}`;
    const file = join(dir, 'hand.yaml');
    writeFileSync(file, `tenants:\n  ${id}:\n    shard: shard-1\n    status: readonly\n`);
    const warning = `shardgate-ctl: config apply: warning: ${file} names no export revision`;
    const r = ctl(['config', 'apply', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.startsWith(warning), r.stderr).toBe(true);
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).toContain('cannot be detected');
    expect(JSON.parse(etcdGet(key)!).status).toBe('readonly');

    // an export whose first line was removed is such a file too
    const exported = join(dir, 'headless.yaml');
    expect(ctl(['config', 'export', '-o', exported]).code).toBe(0);
    writeFileSync(exported, readFileSync(exported, 'utf8').split('\n').slice(1).join('\n'));
    const headless = ctl(['config', 'apply', '-f', exported, '--dry-run']);
    expect(headless.code).toBe(0);
    expect(
      headless.stderr.startsWith(
        `shardgate-ctl: config apply: warning: ${exported} names no export revision`,
      ),
    ).toBe(true);
    expect(headless.stderr.split('\n')).toHaveLength(2);
  });

  it('a file that cannot be written or read is one line naming it and why', () => {
    const missingDir = `/nonexistent-ct-${randomBytes(3).toString('hex')}`;
    for (const [args, expected] of [
      [
        ['config', 'export', '-o', `${missingDir}/x.yaml`],
        `config export: cannot write ${missingDir}/x.yaml: directory ${missingDir} does not exist`,
      ],
      [['config', 'export', '--json', '-o', dir], `config export: cannot write ${dir}: it is a directory`],
      [
        ['config', 'apply', '-f', join(dir, 'missing.yaml')],
        `config apply: cannot read ${join(dir, 'missing.yaml')}: no such file`,
      ],
      [['config', 'apply', '-f', dir], `config apply: cannot read ${dir}: it is a directory`],
    ] as const) {
      const r = ctl([...args]);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(ONE_LINE);
      expect(r.stderr, args.join(' ')).toContain(expected);
      expect(r.code, args.join(' ')).toBe(1);
    }
  });

  it('breakers get default shows the defaults in force; breakers unset deletes one override', () => {
    type View = Record<string, Record<string, { value: number; source: string }>>;
    const get = (kind: string) => {
      const r = ctl(['breakers', 'get', kind, '--json']);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as View;
    };
    const defaults = get('default').default!;
    expect(Object.keys(defaults).sort()).toEqual([
      'call_timeout_ms',
      'failure_threshold',
      'half_open_max_calls',
      'reset_timeout_ms',
    ]);
    for (const v of Object.values(defaults)) expect(['default', 'built-in']).toContain(v.source);

    const key = 'breakers/rabbitmq/half_open_max_calls';
    const before = etcdGet(key);
    if (before !== undefined) restores.push(() => etcdPut(key, before));
    else restores.push(() => etcdGet(key) !== undefined && etcdDel(key));
    const value = String(before === '3' ? 4 : 3);
    expect(ctl(['breakers', 'set', 'rabbitmq', 'half_open_max_calls', value]).code).toBe(0);
    expect(get('rabbitmq').rabbitmq!.half_open_max_calls).toEqual({
      value: Number(value),
      source: 'rabbitmq',
    });

    const r = ctl(['breakers', 'unset', 'rabbitmq', 'half_open_max_calls']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`- ${key} (was ${value})`);
    expect(r.stdout).toContain(
      `rabbitmq half_open_max_calls now follows ${defaults.half_open_max_calls!.source === 'default' ? 'breakers/default/half_open_max_calls' : 'the built-in default'} (${defaults.half_open_max_calls!.value})`,
    );
    expect(etcdGet(key)).toBeUndefined();
    expect(get('rabbitmq').rabbitmq!.half_open_max_calls).toEqual(defaults.half_open_max_calls);

    const again = ctl(['breakers', 'unset', 'rabbitmq', 'half_open_max_calls']);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(
      `${key} is not set; nothing written: rabbitmq half_open_max_calls follows ${defaults.half_open_max_calls!.source === 'default' ? 'breakers/default/half_open_max_calls' : 'the built-in default'} (${defaults.half_open_max_calls!.value})\n`,
    );
    for (const args of [
      ['breakers', 'unset', 'bogus', 'failure_threshold'],
      ['breakers', 'unset', 'redis', 'bogus'],
    ]) {
      const bad = ctl(args);
      expect(bad.stderr, args.join(' ')).toMatch(ONE_LINE);
      expect(bad.code, args.join(' ')).toBe(1);
    }
  });
});

describe("shardgate-ctl config apply: files over etcd's default transaction size, and the export revision", () => {
  /** `tenants:` of new ids on shard-1, as a hand-written file would name them */
  const tenantsYaml = (ids: string[]) =>
    stringify({ tenants: Object.fromEntries(ids.map((id) => [id, { shard: 'shard-1', status: 'active' }])) });

  /** an export of the prefix cut down to one tenant entry, under the export's own first line */
  function exportOf(id: string, file: string): number {
    expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
    const text = readFileSync(file, 'utf8');
    const header = text.split('\n', 1)[0]!;
    const revision = Number(header.match(/revision (\d+)$/)![1]);
    const doc = parse(text) as { tenants: Record<string, unknown> };
    expect(doc.tenants[id]).toBeDefined();
    writeFileSync(file, `${header}\n${stringify({ tenants: { [id]: doc.tenants[id] } })}`);
    return revision;
  }

  it('the stack and compose start etcd with --max-txn-ops raised from its default 128', () => {
    expect(ETCD_MAX_TXN_OPS).toBeGreaterThanOrEqual(1024);
    expect(etcdArgs()).toContain(`--max-txn-ops=${ETCD_MAX_TXN_OPS}`);
    const compose = parse(readFileSync(new URL('../docker/compose.yml', import.meta.url), 'utf8')) as {
      services: { etcd: { command: string[] } };
    };
    expect(compose.services.etcd.command).toContain(`--max-txn-ops=${ETCD_MAX_TXN_OPS}`);
  });

  it("--dry-run of more changes than etcd's default --max-txn-ops warns in one line, and exits 0", () => {
    const ids = Array.from({ length: 130 }, (_, i) => `${uniqueTenantId('bulkdry')}-${i}`);
    const file = join(dir, 'bulk-dry.yaml');
    writeFileSync(file, `# hand-written\n${tenantsYaml(ids)}`);
    const r = ctl(['config', 'apply', '-f', file, '--dry-run', '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      "shardgate-ctl: config apply: warning: the 130 change(s) make one etcd transaction of 130 operations: an etcd with the default --max-txn-ops (128) refuses it; apply the file in parts, or raise etcd's --max-txn-ops\n",
    );
    expect(r.stdout).toContain('dry run: 130 change(s) not applied');
    for (const id of ids.slice(0, 3)) expect(etcdGet(`tenants/${id}`)).toBeUndefined();
    // at the limit: no such line
    const few = join(dir, 'bulk-128.yaml');
    writeFileSync(few, tenantsYaml(ids.slice(0, 128)));
    const ok = ctl(['config', 'apply', '-f', few, '--dry-run', '--force']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toBe('');
  });

  // Needs the stack's etcd started with --max-txn-ops (stack/etcd.ts): an etcd still running with
  // its default refuses the file, and the command says so (exit 1, "too many operations").
  it('applies 200 new tenants in one transaction', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `${uniqueTenantId('bulk')}-${i}`);
    const file = join(dir, 'bulk.yaml');
    writeFileSync(file, tenantsYaml(ids));
    const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    try {
      const r = ctl(['config', 'apply', '-f', file, '--force']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/\napplied 200 change\(s\) at revision \d+\n$/);
      const found = await client.getAll().prefix(`${PREFIX}tenants/t-bulk-`).keys();
      for (const id of ids) expect(found).toContain(`${PREFIX}tenants/${id}`);
    } finally {
      // each key on its own, never a range
      for (const id of ids) await client.delete().key(`${PREFIX}tenants/${id}`).exec();
      client.close();
    }
  });

  it('refuses to re-create a key deleted in etcd after the file was exported, unless --force', () => {
    const id = uniqueTenantId('deleted');
    const key = `tenants/${id}`;
    created.add(key);
    expect(ctl(['tenants', 'create', id, '--shard', 'shard-1']).code).toBe(0);
    const file = join(dir, 'deleted.yaml');
    const revision = exportOf(id, file);
    etcdDel(key);
    for (const args of [['--dry-run'], []]) {
      const r = ctl(['config', 'apply', '-f', file, ...args]);
      expect(r.stderr, args.join(' ')).toMatch(ONE_LINE);
      expect(r.stderr).toContain(
        `config apply: refused /shardgate/${key}: deleted in etcd after the file was exported at revision ${revision} (export again, or --force); nothing written`,
      );
      expect(r.code).toBe(1);
      expect(etcdGet(key)).toBeUndefined();
    }
    const forced = ctl(['config', 'apply', '-f', file, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`+ ${key} = `);
    expect(JSON.parse(etcdGet(key)!).shard).toBe('shard-1');
    // a key the file creates that did not exist at its revision is no deletion: applied
    const fresh = uniqueTenantId('fresh');
    created.add(`tenants/${fresh}`);
    const header = readFileSync(file, 'utf8').split('\n', 1)[0]!;
    writeFileSync(file, `${header}\n${tenantsYaml([fresh])}`);
    const applied = ctl(['config', 'apply', '-f', file]);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(etcdGet(`tenants/${fresh}`)).toBeDefined();
  });

  it("refuses a file whose export revision is above etcd's (not exported from this etcd), unless --force", () => {
    const id = uniqueTenantId('future');
    const key = `tenants/${id}`;
    created.add(key);
    const yaml = join(dir, 'future.yaml');
    writeFileSync(yaml, `# shardgate config, etcd revision 99999999\n${tenantsYaml([id])}`);
    const json = join(dir, 'future.json');
    writeFileSync(
      json,
      JSON.stringify({ $etcdRevision: 99999999, tenants: { [id]: { shard: 'shard-1', status: 'active' } } }),
    );
    for (const file of [yaml, json]) {
      const r = ctl(['config', 'apply', '-f', file]);
      expect(r.stderr, file).toMatch(ONE_LINE);
      expect(r.stderr, file).toMatch(
        /^shardgate-ctl: config apply: the file says revision 99999999 but etcd is at \d+: it was not exported from this etcd \(export again, or --force\); nothing written /,
      );
      expect(r.code, file).toBe(1);
      expect(etcdGet(key)).toBeUndefined();
    }
    const forced = ctl(['config', 'apply', '-f', yaml, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(etcdGet(key)).toBeDefined();
  });

  it('names an unknown section together with every other problem of the file', () => {
    const file = join(dir, 'unknown-section.yaml');
    writeFileSync(
      file,
      'cach:\n  ttl_seconds: 5\nbreakers:\n  default:\n    failure_threshold: banana\ncache:\n  enabled:\n',
    );
    const r = ctl(['config', 'apply', '-f', file, '--dry-run']);
    expect(r.stderr).toMatch(ONE_LINE);
    // the misspelt section once, with its nearest name, not each of its keys
    expect(r.stderr).toContain(
      'invalid /shardgate/cach: not a config section (1 key(s) under it; the sections are shards, tenants, placement, breakers, cache, replication, mail, cors, http, lb): did you mean cache?',
    );
    expect(r.stderr).toContain('invalid /shardgate/cache/enabled: empty value');
    expect(r.stderr).toMatch(
      /invalid \/shardgate\/breakers\/default\/failure_threshold: [^;]+; nothing written/,
    );
    expect(r.code).toBe(1);
  });
});
