/**
 * An option that takes a value, given twice on one command line (`--shard a --shard b`):
 * commander keeps the last one silently, so the command would run on a value the operator may not
 * have meant. Options whose parser collects every value (`--id`, `--replica`) may repeat.
 */
import type { Command, Option } from 'commander';

/** the tokens of `args` that give `option` (`--shard`, `--shard=x`, `-o`, `-ofile`) */
function occurrences(option: Option, args: readonly string[]): number {
  let n = 0;
  for (const token of args) {
    if (token === '--') break;
    if (option.long && (token === option.long || token.startsWith(`${option.long}=`))) n++;
    else if (option.short && !token.startsWith('--') && token.startsWith(option.short)) n++;
  }
  return n;
}

/**
 * The first value-taking option of `command` that `args` (the command line after the program
 * name) gives more than once, with its count; undefined when none. `repeatable` says which may.
 */
export function repeatedOption(
  command: Command,
  args: readonly string[],
  repeatable: (option: Option) => boolean,
): { flags: string; times: number } | undefined {
  for (const option of command.options) {
    if (!(option.required || option.optional) || repeatable(option)) continue;
    const times = occurrences(option, args);
    if (times > 1) return { flags: option.flags, times };
  }
  return undefined;
}
