/**
 * The command tree of shardgate-ctl (CONTRACT.md §5). Building it has no side effect: nothing is
 * parsed and etcd is only reached from inside an action (through its CtlContext). How a refused
 * command line is reported is not decided here but in ctl-main.ts.
 */
import { Command } from 'commander';
import {
  BREAKER_KINDS,
  BREAKER_SETTING_RANGES,
  BREAKER_SETTINGS,
  TENANT_STATUSES,
} from '../src/config/schema.js';
import { getBreakers, setBreaker, unsetBreaker } from './commands/breakers.js';
import { applyCommand, exportCommand } from './commands/config.js';
import { initCommand } from './commands/init.js';
import { listWeights, setWeight, unsetWeight } from './commands/lb.js';
import { type LbSyncOptions, lbSyncCommand } from './commands/lb-sync.js';
import { listDeadLetters, mailStatus, redriveDeadLetters } from './commands/mail.js';
import {
  addReplica,
  addShard,
  listShards,
  removeReplica,
  removeShard,
  setMaster,
} from './commands/shards.js';
import { statusCommand } from './commands/status.js';
import { deleteTenantRowsCommand } from './commands/tenant-delete-rows.js';
import { moveTenant } from './commands/tenant-move.js';
import { createTenant, listTenants, removeTenant, setTenantStatus, showTenant } from './commands/tenants.js';
import { type CtlContext, createCtlContext } from './ctl-context.js';
import { UserError } from './ctl-errors.js';
import { MIN_STATEMENT_BOUND_MS } from './move-steps.js';
import ctlPackage from './package.json' with { type: 'json' };
import { REACH_TIMEOUT_MS } from './reachability.js';
import { wholeNumber } from './whole-number.js';

type Action<A extends unknown[]> = (ctx: CtlContext, ...args: A) => Promise<void>;

/** Wrap a command so it gets a context, and the context is closed whatever happens. */
function run<A extends unknown[]>(action: Action<A>) {
  return async (...args: A) => {
    const ctx = createCtlContext();
    try {
      await action(ctx, ...args);
    } finally {
      ctx.close();
    }
  };
}

/** the parser of a repeatable option: every value given, in order */
export const collect = (value: string, previous: string[] = []) => [...previous, value];

const JSON_HELP = 'machine-readable output';
/** the schema's status enum, as help text */
const STATUSES = TENANT_STATUSES.join(' | ');
const REACH_HELP = `Every address given must take a TCP connection within ${REACH_TIMEOUT_MS / 1000} s (no credentials needed); else the command is refused, naming the address and the error.`;
const FORCE_HELP = 'write even if an address takes no TCP connection (warns on stderr)';

export function buildProgram(): Command {
  const program = new Command('shardgate-ctl')
    .description('control plane of shardgate: shards, tenants, breakers, load-balancer weights, config')
    .version(ctlPackage.version, '-V, --version', 'print the version of shardgate-ctl')
    .exitOverride();

  program
    .command('init')
    .description(
      'seed etcd with the defaults of every absent key (and the local topology while etcd holds no shard)',
    )
    .option('--force', 'overwrite existing keys with the defaults, the local topology included')
    .option('--no-topology', 'do not seed the shards, placement and weights of the local stack')
    .action(run((ctx, opts: { force?: boolean; topology?: boolean }) => initCommand(ctx, opts)));

  program
    .command('status')
    .description('shards, tenants per shard, weights, breaker settings and registered instances')
    .option('--json', 'machine-readable output')
    .action(run((ctx, opts: { json?: boolean }) => statusCommand(ctx, opts)));

  const shards = program.command('shards').description('manage shards (shards/<id>)');
  shards
    .command('list')
    .description('shards with their master, replicas and tenant count')
    .option('--json', JSON_HELP)
    .action(run((ctx, opts: { json?: boolean }) => listShards(ctx, opts)));
  shards
    .command('add <id>')
    .summary('add a shard (its addresses must take a TCP connection, or --force)')
    .description(
      `add a shard. ${REACH_HELP} With a database password, the master is then asked, as by set-master, whether it can take the shard's writes (refused unless --force: read_only, still replicating; a server that cannot be asked is left to the schema line), and each replica whether it replicates from it (a warning).`,
    )
    .requiredOption('--master <host:port>', 'master address (required)')
    .option(
      '--replica <host:port[@weight]>',
      'replica address, weight 0-256 (default 1); repeatable, each server once and not the master',
      collect,
    )
    .option('--database <name>', 'database name', 'shardgate')
    .option('--password-env <VAR>', "env var holding this shard's password")
    .option('--force', FORCE_HELP)
    .action(run((ctx, id: string, opts) => addShard(ctx, id, opts)));
  shards
    .command('remove <id>')
    .description(
      'remove a shard (refused while it holds tenants or placement lists it; and, unless --force, while a move record or a removal record names it, or its outbox holds mail not delivered yet)',
    )
    .option(
      '--force',
      'remove it although a move, left rows or undelivered mail would be stranded (warns on stderr)',
    )
    .action(run((ctx, id: string, opts: { force?: boolean }) => removeShard(ctx, id, opts)));
  shards
    .command('set-master <id> <host:port>')
    .summary('point a shard at a new master (it must take writes, or --force)')
    .description(
      `point a shard at a new master. Naming one of the shard's replicas promotes it: it leaves the replicas in the same write (make it writable and stop its replication first). ${REACH_HELP} Then the server is asked, with the application's database credentials, whether it can take the shard's writes: one that is read_only, still replicates, has received transactions it has not applied, or cannot be logged in to is refused unless --force.`,
    )
    .option(
      '--force',
      'write even if the address takes no TCP connection, or the server says it cannot take writes (warns on stderr)',
    )
    .action(run((ctx, id: string, hp: string, opts: { force?: boolean }) => setMaster(ctx, id, hp, opts)));
  shards
    .command('add-replica <id> <host:port>')
    .summary('add a replica to a shard (it must take a TCP connection and replicate the master, or --force)')
    .description(
      `add a replica to a shard. ${REACH_HELP} Then the server is asked, with the application's database credentials, whether it replicates the shard's master: one ahead of the master (it holds transactions the master lacks) or with no replication set up is refused unless --force.`,
    )
    .option('--weight <n>', 'replica weight 0-256', '1')
    .option(
      '--force',
      'write even if the address takes no TCP connection, is ahead of the master or replicates nothing (warns on stderr)',
    )
    .action(
      run((ctx, id: string, hp: string, opts: { weight?: string; force?: boolean }) =>
        addReplica(ctx, id, hp, opts),
      ),
    );
  shards
    .command('remove-replica <id> <host:port>')
    .description('remove a replica from a shard')
    .action(run((ctx, id: string, hp: string) => removeReplica(ctx, id, hp)));

  const tenants = program.command('tenants').description('manage the tenant directory (tenants/<id>)');
  tenants
    .command('create <id>')
    .description('create a tenant on --shard or where the placement policy puts it')
    .option('--shard <id>', 'shard to place it on')
    .option('--status <status>', STATUSES, 'active')
    .option('--name <name>', 'display name used in emails: 1-200 characters, no control characters')
    .option(
      '--adopt-rows',
      "create it although the shard still holds rows of an earlier tenant of this id (they become its rows, members and their tokens included); without it, such an id is refused when SHARDGATE_DB_PASSWORD (or the shard's passwordEnv) is set to count them, and, when they cannot be counted, if `tenants remove` recorded it as removed from that shard with its rows left",
    )
    .action(run((ctx, id: string, opts) => createTenant(ctx, id, opts)));
  tenants
    .command('list')
    .summary('every tenant entry; one the API instances reject is marked with its problem')
    .description(
      'every tenants/<id> entry in etcd. One the API instances reject (unknown shard, not JSON, bad status, ...) is listed too, marked with its problem (`problem` and `value` in --json)',
    )
    .option('--json', JSON_HELP)
    .action(run((ctx, opts: { json?: boolean }) => listTenants(ctx, opts)));
  tenants
    .command('show <id>')
    .description("a tenant's entry and its shard's master; a rejected entry with its problem")
    .option('--json', JSON_HELP)
    .action(run((ctx, id: string, opts: { json?: boolean }) => showTenant(ctx, id, opts)));
  tenants
    .command('set-status <id> <status>')
    .summary(`set a tenant's status: ${STATUSES}`)
    .description(
      `set an existing tenant's status: ${STATUSES} (its other fields are kept). An edit made in etcd meanwhile is never lost: the command reads again and retries`,
    )
    .action(run((ctx, id: string, status: string) => setTenantStatus(ctx, id, status)));
  tenants
    .command('remove <id>')
    .summary("remove a tenant's directory entry only; its rows stay (needs --yes)")
    .description(
      "remove a tenant's directory entry (tenants/<id>) only: its rows stay on its shard, nothing is deleted there. The tenant answers 404 at once, so --yes is required",
    )
    .option('--yes', 'confirm: the tenant answers 404 from now on')
    .action(run((ctx, id: string, opts: { yes?: boolean }) => removeTenant(ctx, id, opts)));
  tenants
    .command('delete-rows <id>')
    .summary('delete every row of a removed tenant id on one shard (needs --yes)')
    .description(
      "delete every row tenant <id> holds on the master of the shard --shard names (members, books, loans, idempotency keys), so the id is free there; its delivered mails once the worker's purge would take them (older than mail/outbox_retention_hours), mails not delivered stay. Refused while the tenant is placed on that shard (tenants remove it first) or a move of it is recorded, and when a registered API instance has not applied its removal within 10 s (it puts runtime/barrier and waits for each to report that revision). Needs SHARDGATE_DB_PASSWORD (or the shard's passwordEnv); cannot be undone, hence --yes",
    )
    .requiredOption('--shard <shard>', 'the shard whose rows of the id are deleted (required)')
    .option('--yes', 'confirm: the rows are deleted for good')
    .action(
      run((ctx, id: string, opts: { shard: string; yes?: boolean }) =>
        deleteTenantRowsCommand(ctx, id, opts),
      ),
    );
  tenants
    .command('move <id>')
    .summary("move a tenant's rows to another shard and point its entry there")
    .description(
      "copy a tenant's rows to the shard --to names and switch its directory entry there: an active tenant is readonly (writes answer 423) until every instance reads from the new shard; the source's rows are deleted after the switch unless --keep-source. Run again after an interrupted move, it finishes that move (--to its target) or takes it back (--to its source). Needs SHARDGATE_DB_PASSWORD (or the shards' passwordEnv) and Redis",
    )
    .requiredOption('--to <shard>', 'the shard to move it to (required)')
    .option(
      '--overwrite',
      'replace rows of the tenant the target shard holds already (left by an earlier remove or --keep-source)',
    )
    .option('--keep-source', "leave the tenant's rows on the shard it leaves")
    .option(
      '--wait-ms <ms>',
      `100-600000 ms: how long to wait for every instance, and each replica, to apply a step; also how long a shard server may take to answer one statement, but there never less than ${MIN_STATEMENT_BOUND_MS} ms`,
      '10000',
    )
    .action(
      run(
        (
          ctx,
          id: string,
          opts: { to: string; overwrite?: boolean; keepSource?: boolean; waitMs: string },
        ) => {
          const waitMs = wholeNumber(opts.waitMs, 100, 600_000);
          if (waitMs === undefined)
            throw new UserError(`invalid --wait-ms "${opts.waitMs}": a whole number 100-600000`);
          return moveTenant(ctx, id, { ...opts, waitMs });
        },
      ),
    );

  const breakers = program
    .command('breakers')
    .description('circuit-breaker settings (breakers/<kind>/<setting>)');
  breakers
    .command('get [kind]')
    .description(
      'breaker settings in force per kind (or of `default`), and where each comes from: the kind, default or built-in',
    )
    .option('--json', JSON_HELP)
    .action(run((ctx, kind: string | undefined, opts: { json?: boolean }) => getBreakers(ctx, kind, opts)));
  breakers
    .command('set <kind> <setting> <value>')
    .description(
      `kind: default | ${BREAKER_KINDS.join(' | ')}; setting (whole numbers): ${BREAKER_SETTINGS.map((s) => `${s} ${BREAKER_SETTING_RANGES[s].join('–')}`).join(', ')}`,
    )
    .action(
      run((ctx, kind: string, setting: string, value: string) => setBreaker(ctx, kind, setting, value)),
    );
  breakers
    .command('unset <kind> <setting>')
    .summary('delete one breaker setting key: a kind then follows default, default the built-in value')
    .description(
      'delete the key breakers/<kind>/<setting>. A kind then follows breakers/default/<setting>; unsetting a default setting makes every kind without its own key follow the built-in default. Says which value applies now; a key that is not set is no error',
    )
    .action(run((ctx, kind: string, setting: string) => unsetBreaker(ctx, kind, setting)));

  const lb = program
    .command('lb')
    .description(
      "load-balancer weights; `lb sync` pushes them and the CORS origins to HAProxy's runtime API",
    );
  lb.command('weight <instanceId> <weight>')
    .description(
      'set the HAProxy weight of an instance (a whole number 0-256, 0 = drain); one not registered now gets it too, with a warning. A 0 that leaves no registered instance with a weight above 0 (HAProxy would answer every request 503) is refused unless --force',
    )
    .option('--force', 'drain the last registered instance with a weight above 0 too')
    .action(run((ctx, id: string, w: string, opts: { force?: boolean }) => setWeight(ctx, id, w, opts)));
  lb.command('weights')
    .description(
      'every weight set in etcd (lb/weights/<id>), in force, and whether its instance is registered',
    )
    .option('--json', JSON_HELP)
    .action(run((ctx, opts: { json?: boolean }) => listWeights(ctx, opts)));
  lb.command('unset <instanceId>')
    .description(
      "delete an instance's weight key: lb sync gives its server the haproxy.cfg weight again (ends a drain); a key that is not set is no error",
    )
    .action(run((ctx, id: string) => unsetWeight(ctx, id)));

  lb.command('sync')
    .description(
      "push lb/weights/* (0 = drain; a server without a key gets its haproxy.cfg weight) and cors/allowed_origins (HAProxy's map of CORS origins, for the CORS headers of its own answers) to HAProxy through its runtime API",
    )
    .option(
      '--watch',
      "keep running: follow etcd and re-apply after HAProxy restarts; also copy each server's maint or drain set by hand to the fallback backend",
    )
    .option(
      '--socket <path>',
      "HAProxy runtime API socket (default: SHARDGATE_HAPROXY_SOCKET, else the local stack's .stack/haproxy.sock)",
    )
    .option('--backend <name>', 'HAProxy backend of the API servers', 'api')
    // no commander default: a one-shot sync given --interval-ms is refused (lb-sync.ts), so the
    // option must be absent unless given; parseIntervalMs gives 1000 then
    .option(
      '--interval-ms <ms>',
      'HAProxy restart check period, only with --watch: 100-3600000 (default: 1000)',
    )
    .action(run((ctx, opts: LbSyncOptions) => lbSyncCommand(ctx, opts)));

  const mail = program
    .command('mail')
    .description('the email queues on RabbitMQ (SHARDGATE_AMQP_URL): depths, dead letters, redrive');
  mail
    .command('status')
    .description(
      "messages ready in the work queue, each retry tier and the dead-letter queue, and in an older version's retry queues while they exist (not those a worker holds: its shardgate_mail_in_flight)",
    )
    .option('--json', JSON_HELP)
    .action(run((ctx, opts: { json?: boolean }) => mailStatus(ctx, opts)));
  mail
    .command('dead-letters')
    .summary('the dead-lettered mails, oldest first, with attempts and last error')
    .description(
      'the messages of the dead-letter queue, oldest first: outbox id, shard, tenant, kind, recipient, attempts, outage retries and the last error (poison messages marked). Reads every message once and puts it back at the tail, so the queue keeps its order',
    )
    .option('--limit <n>', 'show at most n messages (all are counted)', '100')
    .option('--json', JSON_HELP)
    .action(run((ctx, opts: { json?: boolean; limit?: string }) => listDeadLetters(ctx, opts)));
  mail
    .command('redrive')
    .summary('send dead-lettered mails back to the work queue with their attempts reset')
    .description(
      'move dead-lettered mails (oldest first; only those of --id if given) to the work queue with their attempts reset. Poison messages stay. The worker mails each outbox id once, so a mail delivered meanwhile is not sent again. The dead-letter mark of each mail on its shard master is cleared first (so the worker re-publishes it should the broker drop it again): needs SHARDGATE_DB_PASSWORD (or the passwordEnv of the shard); a mail whose mark cannot be cleared stays in the dead-letter queue',
    )
    .option('--id <outboxId>', 'only this mail (repeatable)', collect)
    .option('--limit <n>', 'move at most n messages')
    .action(run((ctx, opts: { id?: string[]; limit?: string }) => redriveDeadLetters(ctx, opts)));

  const config = program.command('config').description('export or apply the whole config as YAML (or JSON)');
  config
    .command('export')
    .summary('the managed config as YAML (first line: the etcd revision read), or --json')
    .description(
      'print the managed config keys (all but instances/) as YAML whose first line names the etcd revision read, or as JSON with that revision in "$etcdRevision"; `config apply` uses it to refuse undoing later edits',
    )
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--json', 'JSON instead of YAML, the revision in "$etcdRevision"')
    .action(run((ctx, opts: { output?: string; json?: boolean }) => exportCommand(ctx, opts)));
  config
    .command('apply')
    .summary('validate a config file, print the diff, write it in one guarded etcd transaction')
    .description(
      'validate every key of a file from `config export` (YAML or JSON; hand-written too), print the diff and write it in one etcd transaction guarded by the revision read. A key changed in etcd after the export revision of the file is refused (--force); a file with no export revision is applied with a warning that such edits cannot be detected',
    )
    .requiredOption('-f, --file <file>', 'YAML or JSON file, e.g. from `config export` (required)')
    .option('--dry-run', 'validate and print the diff, write nothing')
    .option('--prune', 'delete managed keys that the file does not name')
    .option(
      '--force',
      'also change keys that changed or were deleted in etcd after the file was exported, skip the revision checks, apply weights that leave no registered instance above 0, apply a tenant on a shard it was recorded as removed from (as --adopt-rows), and ask no server of the file anything (without it, a new address that takes no connection and a new master that is read-only or replicating are warned of)',
    )
    .option(
      '--adopt-rows',
      'apply a tenant entry on a shard that `tenants remove` (or an earlier apply) recorded it as removed from with its rows left there: the tenant gets those rows back, members and their tokens included (refused without it; --force skips that check too)',
    )
    .action(
      run(
        (
          ctx,
          opts: { file: string; dryRun?: boolean; prune?: boolean; force?: boolean; adoptRows?: boolean },
        ) => applyCommand(ctx, opts),
      ),
    );

  // `help <command> [<subcommand>…]`: commander's own help command looks at its first word only
  // (`help lb weight` printed the help of `lb`), so this one walks every word given. Added last,
  // so the groups keep their own implicit `help [command]`.
  program.helpCommand(false);
  program
    .command('help [command...]')
    .description('display help for command')
    .action((words: string[]) => {
      let command: Command = program;
      for (const word of words) {
        const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
        // on the command it concerns, as commander refuses an unknown command: one line naming it
        if (!sub) return command.error(`unknown command '${word}'`, { code: 'commander.unknownCommand' });
        command = sub;
      }
      command.help();
    });

  return program;
}
