/**
 * The arguments of `npm run migrate`: `--shard <id>` or `--shard=<id>`, repeatable. `named` is
 * undefined when none is given (every shard in etcd). Anything else is refused with a reason
 * naming the argument; nothing is migrated then.
 */
export type ShardArgs = { ok: true; named: Set<string> | undefined } | { ok: false; reason: string };

const USAGE = 'usage: npm run migrate [-- --shard <id>]...';

export function parseShardArgs(argv: readonly string[]): ShardArgs {
  const named = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    let id: string | undefined;
    if (arg.startsWith('--shard=')) id = arg.slice('--shard='.length);
    else if (arg === '--shard') id = argv[++i];
    else return { ok: false, reason: `unknown argument "${arg}" (${USAGE})` };
    if (!id || id.startsWith('-')) return { ok: false, reason: `--shard needs a shard id (${USAGE})` };
    named.add(id);
  }
  return { ok: true, named: named.size > 0 ? named : undefined };
}
