import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { UserError } from './ctl-errors.js';
import { commandPath, MAX_ARG_CHARS, main } from './ctl-main.js';
import { buildProgram } from './ctl-program.js';

const commandsOf = (c: Command): Command[] => [c, ...c.commands.flatMap(commandsOf)];

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

  it.each([
    [
      ['shards', 'add', 't-x', '--mastr', '127.0.0.1:3316'],
      "shardgate-ctl: shards add: unknown option '--mastr' (Did you mean --master?) (see shardgate-ctl shards add --help)\n",
    ],
    [
      ['config', 'apply', '--flie', 'x.yaml'],
      "shardgate-ctl: config apply: unknown option '--flie' (Did you mean --file?) (see shardgate-ctl config apply --help)\n",
    ],
    [
      ['tenants', 'move', 't-x', '--ot', 's2'],
      "shardgate-ctl: tenants move: unknown option '--ot' (Did you mean --to?) (see shardgate-ctl tenants move --help)\n",
    ],
  ])('a misspelled required option %j is unknown, with commander\'s suggestion, not "not specified"', async (args, line) => {
    const r = await runCtl(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(line);
  });

  it('a required option left out is still refused, before the action runs', async () => {
    const action = vi.fn();
    const program = buildProgram();
    commandsOf(program)
      .find((c) => commandPath(c) === 'shards add')!
      .action(action);
    const r = await runCtl(['shards', 'add', 't-x', '--database', 'db'], program);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "shardgate-ctl: shards add: required option '--master <host:port>' not specified (see shardgate-ctl shards add --help)\n",
    );
    expect(action).not.toHaveBeenCalled();
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

  it('an argument over MAX_ARG_CHARS is refused in one short line that does not repeat it', async () => {
    const long = 'a'.repeat(20_000);
    for (const args of [['lb', 'weight', long, '3'], ['tenants', 'show', long], [long]]) {
      const r = await runCtl(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr.length).toBeLessThan(300);
      expect(r.stderr).toContain(`is 20000 characters long; no argument takes more than ${MAX_ARG_CHARS}`);
    }
    expect((await runCtl(['lb', 'weight', long, '3'])).stderr).toMatch(
      /^shardgate-ctl: lb weight: argument 3 /,
    );
  });

  it('a UserError raised before any etcd call by the real program', async () => {
    const r = await runCtl(['shards', 'add', 'Bad_Id', '--master', 'x:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toMatch(/^shardgate-ctl: shards add: invalid shard id "Bad_Id"/);
  });
});

describe('shardgate-ctl option values refused before any etcd call', () => {
  // an etcd nobody answers on: a command that got as far as etcd would exit 2, not 1
  const offline = () => vi.stubEnv('SHARDGATE_ETCD_ENDPOINTS', 'http://127.0.0.1:1');
  const id = 'ct-opts-0a1b2c';
  const ok = ['--master', '127.0.0.1:3999'];

  it.each([
    [
      ['lb', 'sync', '--watch', '--interval-ms', 'abc'],
      "lb sync: --interval-ms must be a whole number of milliseconds from 100 to 3600000, got 'abc'",
    ],
    [
      ['lb', 'sync', '--watch', '--interval-ms', '0'],
      "--interval-ms must be a whole number of milliseconds from 100 to 3600000, got '0'",
    ],
    [['lb', 'sync', '--interval-ms', '99'], "got '99'"],
    [['lb', 'sync', '--interval-ms', '2.5e3'], "got '2.5e3'"],
    [['tenants', 'create', id, '--name', ''], 'tenants create: --name must be 1–200 characters, got 0'],
    [['tenants', 'create', id, '--name', 'x'.repeat(201)], '--name must be 1–200 characters, got 201'],
    [
      ['tenants', 'create', id, '--name', 'a\nb'],
      '--name must not contain control characters, U+2028, U+2029, bidi controls or direction marks (U+000A at character 2)',
    ],
    [['tenants', 'create', id, '--name', 'evil\u202Etxt'], '(U+202E at character 5)'],
    [['tenants', 'create', id, '--name', '   '], 'tenants create: --name must not be blank'],
    [['tenants', 'create', id, '--name', 'a\u2028b'], '(U+2028 at character 2)'],
    [['tenants', 'create', id, '--name', 'tab\there'], '(U+0009 at character 4)'],
    [['tenants', 'create', id, '--name', 'del\u007f'], '(U+007F at character 4)'],
    [
      ['shards', 'add', id, ...ok, '--replica', '127.0.0.1:3998', '--replica', '127.0.0.1:3998@2'],
      'shards add: --replica 127.0.0.1:3998 is given twice',
    ],
    [
      ['shards', 'add', id, ...ok, '--replica', '127.0.0.1:3999'],
      "shards add: --replica 127.0.0.1:3999 is the shard's master (--master): a server cannot be its own replica",
    ],
    [
      ['shards', 'add', id, ...ok, '--replica', 'h:1@x'],
      "--replica 'h:1@x': the weight after @ must be a whole number 0–256",
    ],
    [
      ['shards', 'add', id, ...ok, '--replica', 'h:1@257'],
      "--replica 'h:1@257': the weight after @ must be a whole number 0–256",
    ],
    [
      ['shards', 'add', id, ...ok, '--replica', 'h:1@'],
      "--replica 'h:1@': the weight after @ must be a whole number 0–256",
    ],
    [
      ['shards', 'add-replica', id, 'h:1', '--weight', 'abc'],
      "shards add-replica: --weight 'abc': must be a whole number 0–256",
    ],
    [['shards', 'add-replica', id, 'h:1', '--weight', '-1'], "--weight '-1': must be a whole number 0–256"],
  ])('%j → exit 1, one line naming the option', async (args, expected) => {
    offline();
    try {
      const r = await runCtl(args);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain(expected);
      expect(r.code).toBe(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('takes a name of 200 characters with any printable Unicode, and the weights at both ends', async () => {
    offline();
    try {
      // got past the option checks: the command then needs etcd, which is not there (exit 2)
      for (const args of [
        ['tenants', 'create', id, '--name', `Bücherei «Nord» ${'é'.repeat(183)}`],
        ['shards', 'add', id, ...ok, '--replica', '127.0.0.1:3998@0', '--replica', '127.0.0.1:3997@256'],
        ['shards', 'add-replica', id, 'h:1', '--weight', '256'],
      ]) {
        const r = await runCtl(args);
        expect(r.stderr, args.join(' ')).toMatch(/^shardgate-ctl: etcd unreachable/);
        expect(r.code, args.join(' ')).toBe(2);
      }
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('shardgate-ctl help and version', () => {
  it('--version prints the version of the package on stdout', async () => {
    const { version } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-V']) {
      const r = await runCtl([flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(`${version}\n`);
    }
  });

  it('every command has a description in its group help', async () => {
    const program = buildProgram();
    const missing = commandsOf(program)
      .filter((c) => c.parent && !c.description() && !c.summary())
      .map((c) => commandPath(c));
    expect(missing).toEqual([]);
    const r = await runCtl(['config', '--help']);
    expect(r.stdout).toMatch(/^ {2}export \[options\] +\S/m);
    expect(r.stdout).toMatch(/^ {2}apply \[options\] +\S/m);
  });
});

describe('help texts that say what the command does', () => {
  /** the help of `args`, its lines joined as commander wrapped them */
  const helpOf = async (args: string[]) => (await runCtl([...args, '--help'])).stdout.replace(/\s+/g, ' ');

  it('tenants move --wait-ms: 100-600000 is the option, at least 1000 only the bound of a statement', async () => {
    const help = await helpOf(['tenants', 'move']);
    expect(help).toContain(
      '--wait-ms <ms> 100-600000 ms: how long to wait for every instance, and each replica, to apply a step; also how long a shard server may take to answer one statement, but there never less than 1000 ms',
    );
    expect(help).not.toContain('(at least 1000): 100-600000');
  });

  it('lb sync names both things it pushes: the weights and the CORS origins', async () => {
    const help = await helpOf(['lb', 'sync']);
    expect(help).toContain(
      'push lb/weights/* (0 = drain; a server without a key gets its haproxy.cfg weight)',
    );
    expect(help).toContain("and cors/allowed_origins (HAProxy's map of CORS origins");
  });
});

describe('small fixes: help of a subcommand, --interval-ms without --watch, an empty -o', () => {
  it('`help <command> <sub>` prints the help of the subcommand, exit 0', async () => {
    for (const [args, usage] of [
      [['help', 'lb', 'weight'], 'Usage: shardgate-ctl lb weight [options] <instanceId> <weight>'],
      [['help', 'config', 'apply'], 'Usage: shardgate-ctl config apply [options]'],
      [['help', 'lb'], 'Usage: shardgate-ctl lb [options] [command]'],
      [['help'], 'Usage: shardgate-ctl [options] [command]'],
      [['lb', 'help', 'weight'], 'Usage: shardgate-ctl lb weight [options] <instanceId> <weight>'],
    ] as const) {
      const r = await runCtl([...args]);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')[0]).toBe(usage);
    }
  });

  it('`help` naming an unknown subcommand: one line naming it, exit 1', async () => {
    const r = await runCtl(['help', 'lb', 'bogus']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("shardgate-ctl: lb: unknown command 'bogus' (see shardgate-ctl lb --help)\n");
    const top = await runCtl(['help', 'bogus']);
    expect(top.stderr).toBe("shardgate-ctl: unknown command 'bogus' (see shardgate-ctl --help)\n");
  });

  it('lb sync --interval-ms without --watch is refused in one line, exit 1', async () => {
    const r = await runCtl(['lb', 'sync', '--interval-ms', '500']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain('lb sync: --interval-ms needs --watch');
  });

  it('config export -o "" is refused in one line, exit 1, before reaching etcd', async () => {
    const r = await runCtl(['config', 'export', '-o', '']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain("config export: option '-o, --output <file>' names no file");
  });
});
