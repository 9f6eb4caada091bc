/**
 * shardgate-ctl against the real etcd of the local stack: exit codes, export/apply round trip,
 * validation before any write, and instances reporting the config revision they applied.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ctl } from './helpers/ctl.js';
import { etcdGet, etcdOverride, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-ctl-'));
const restores: (() => void)[] = [];
afterAll(() => {
  for (const r of restores.reverse()) r();
});

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
  });

  it('refuses a bad command line with exit 1 and one line naming the command and the culprit', () => {
    for (const [args, expected] of [
      [['tenants', 'create'], "tenants create: missing required argument 'id'"],
      [['breakers', 'set', 'redis', 'failure_threshold'], "breakers set: missing required argument 'value'"],
      [['bogus'], "shardgate-ctl: unknown command 'bogus' (see shardgate-ctl --help)"],
      [['tenants', 'bogus'], "tenants: unknown command 'bogus' (see shardgate-ctl tenants --help)"],
      [['lb', 'sync', '--json'], "lb sync: unknown option '--json' (see shardgate-ctl lb sync --help)"],
      [['config', 'apply', '--dry-run'], "config apply: required option '-f, --file <file>' not specified"],
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
    // live replica lag, as a running instance measures it
    const full = JSON.parse(ctl(['status', '--json']).stdout) as {
      shards: { id: string; replicaLag: { state: string; lagSeconds: number | null }[] | null }[];
    };
    for (const shard of full.shards.filter((s) => s.id.startsWith('shard-'))) {
      expect(shard.replicaLag?.length, shard.id).toBeGreaterThan(0);
      expect(typeof shard.replicaLag?.[0]?.lagSeconds).toBe('number');
    }
  });

  it('status shows no instance behind after a put that changes nothing but the revision', async () => {
    const key = 'replication/ryw_timeout_ms';
    restores.push(etcdOverride(key, etcdGet(key) ?? '200'));
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
    expect(s.unregisteredWeighted).toEqual(['api-9']);
    expect(ctl(['status']).stdout).toMatch(/lb weights: .*\(not registered: api-9\)/);
  });
});
