import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { UserError } from './ctl-errors.js';
import { main } from './ctl-main.js';

/** Run main() on `args` with stdout and stderr captured; nothing here reaches etcd. */
async function runCtl(args: string[], program?: Command) {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => out.push(String(s)) > 0);
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => err.push(String(s)) > 0);
  try {
    const code = await main(['node', 'shardgate-ctl', ...args], program);
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    vi.restoreAllMocks();
  }
}

/** exactly one line, in the shape CONTRACT.md §5 promises */
const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;

describe('shardgate-ctl command-line errors', () => {
  it.each([
    [
      ['tenants', 'create'],
      "tenants create: missing required argument 'id' (see shardgate-ctl tenants create --help)",
    ],
    [['tenants', 'show'], "tenants show: missing required argument 'id'"],
    [['breakers', 'set', 'redis', 'failure_threshold'], "breakers set: missing required argument 'value'"],
    [['bogus'], "unknown command 'bogus' (see shardgate-ctl --help)"],
    [['tenants', 'bogus'], "tenants: unknown command 'bogus' (see shardgate-ctl tenants --help)"],
    [['help', 'bogus'], "unknown command 'bogus'"],
    [['tenant'], "unknown command 'tenant' (Did you mean tenants?)"],
    [['lb', 'sync', '--json'], "lb sync: unknown option '--json' (see shardgate-ctl lb sync --help)"],
    [['config', 'apply', '--dry-run'], "config apply: required option '-f, --file <file>' not specified"],
    [['shards', 'add', 's9', '--master'], "shards add: option '--master <host:port>' argument missing"],
    [['tenants', 'show', 'a', 'b'], 'tenants show: too many arguments'],
    [['tenants'], 'tenants: missing command, one of: create, list, show, set-status, remove'],
  ])('%j → exit 1 and one line naming it', async (args, expected) => {
    const r = await runCtl(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(expected);
  });

  it('--help prints the full help on stdout and exits 0', async () => {
    for (const args of [['--help'], ['help'], ['config', 'apply', '--help'], ['help', 'tenants']]) {
      const r = await runCtl(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: shardgate-ctl/);
    }
  });

  it('no arguments at all: the help on stdout, exit 0', async () => {
    const r = await runCtl([]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Usage: shardgate-ctl \[options\] \[command\]/);
    expect(r.stdout).toContain('tenants');
  });

  it('a UserError of an action is one line naming the command, even if its message had line breaks', async () => {
    const program = new Command('shardgate-ctl').exitOverride();
    program
      .command('config')
      .command('apply')
      .action(() => {
        throw new UserError('invalid /p/a: bad;\n  invalid /p/b: worse; nothing written');
      });
    const r = await runCtl(['config', 'apply'], program);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'shardgate-ctl: config apply: invalid /p/a: bad; invalid /p/b: worse; nothing written (see shardgate-ctl config apply --help)\n',
    );
  });

  it('a UserError raised before any etcd call by the real program', async () => {
    const r = await runCtl(['shards', 'add', 'Bad_Id', '--master', 'x:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(/^shardgate-ctl: shards add: invalid shard id "Bad_Id"/);
  });
});
