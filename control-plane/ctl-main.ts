/**
 * Running shardgate-ctl: parse the command line, run the action, and turn every outcome into the
 * exit-code contract of CONTRACT.md §5.
 *
 *   0  success; `--help` / `help [command]` (the help on stdout); a bare `shardgate-ctl`, which
 *      asks for nothing and so gets the program's help on stdout.
 *   1  a user error: exactly ONE line on stderr,
 *        shardgate-ctl: <command>: <what is wrong> (see shardgate-ctl <command> --help)
 *      both when commander refuses the command line (missing or unknown argument, option or
 *      command; a command group without its subcommand) and when an action refuses the request
 *      (UserError, e.g. `config apply` naming every invalid key).
 *   2  etcd unreachable (or RabbitMQ, for `mail …`): one line on stderr.
 *
 * Commander writes help to stdout when it is asked for, and nothing to stderr: its error output
 * is switched off on every command, and its exit is turned into a CommandLineExit that carries the
 * command it concerns, so the line can name that command without reading any text back.
 *
 * An unknown option outranks a missing required one: `shards add s1 --mastr h:1` is refused as
 * "unknown option '--mastr' (Did you mean --master?)", not as "required option '--master …' not
 * specified". Commander checks required options first, so they are enforced here instead (see
 * requireMandatoryOptionsLast), after commander has refused unknown options and arguments.
 */
import { type Command, CommanderError, type Option } from 'commander';
import { UnreachableError, UserError } from './ctl-errors.js';
import { buildProgram, collect } from './ctl-program.js';
import { repeatedOption } from './repeated-option.js';
import { terminalSafe } from './terminal-safe.js';

const NAME = 'shardgate-ctl';

/** Commander's exit (error, help or version) on `command`, thrown by its exitOverride. */
class CommandLineExit extends Error {
  constructor(
    readonly command: Command,
    readonly commander: CommanderError,
  ) {
    super(commander.message);
  }
}

/** `tenants create` for that command; '' for the program itself. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Any line break, with the blanks around it, becomes one space: a message is never two lines. */
const oneLine = (text: string) => text.trim().replace(/\s*\n\s*/g, ' ');

/** The single stderr line (without its newline) of a user error concerning `command`. */
export function userErrorLine(command: Command, message: string): string {
  const path = commandPath(command);
  const help = [NAME, path, '--help'].filter(Boolean).join(' ');
  return `${NAME}: ${path ? `${path}: ` : ''}${oneLine(message)} (see ${help})`;
}

/** What is wrong with a command line that commander refused, naming the argument, option or command. */
export function describeRefusal(command: Command, error: CommanderError): string {
  if (error.code === 'commander.help') {
    // help({ error: true }): a command group was given no subcommand (`tenants`), or the help
    // command an unknown one (`help bogus`); commander's message is only a placeholder.
    const given = command.args.at(-1);
    if (given !== undefined) return `unknown command '${given}'`;
    return `missing command, one of: ${command.commands.map((c) => c.name()).join(', ')}`;
  }
  // missingArgument, unknownCommand, unknownOption, missingMandatoryOptionValue,
  // optionMissingArgument, excessArguments, …: commander's message names the culprit.
  return error.message.replace(/^error: /, '');
}

function commandsOf(command: Command): Command[] {
  return [command, ...command.commands.flatMap(commandsOf)];
}

const writeLine = (line: string) => process.stderr.write(`${terminalSafe(line)}\n`);

/**
 * the longest argument taken: ids, names (200 characters), values and file paths are all shorter;
 * a longer one is refused without being echoed
 */
export const MAX_ARG_CHARS = 1024;

/** the (sub)command the leading words of `args` name, as far as they name one */
function commandNamed(program: Command, args: string[]): Command {
  let command = program;
  for (const word of args) {
    const sub = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!sub) break;
    command = sub;
  }
  return command;
}

/**
 * Take the required options of every command away from commander and return a check of them for
 * the preAction hook, which runs after commander's checks of unknown options and of arguments.
 * The check fails with commander's own code and wording for a required option not given.
 */
function requireMandatoryOptionsLast(program: Command): (command: Command) => void {
  const mandatory = new Map<Command, Option[]>();
  for (const command of commandsOf(program)) {
    const options = command.options.filter((option) => option.mandatory);
    for (const option of options) option.makeOptionMandatory(false);
    mandatory.set(command, options);
  }
  return (command) => {
    for (let c: Command | null = command; c; c = c.parent) {
      const owner = c;
      const missing = mandatory
        .get(owner)
        ?.find((o) => owner.getOptionValue(o.attributeName()) === undefined);
      if (missing)
        owner.error(`error: required option '${missing.flags}' not specified`, {
          code: 'commander.missingMandatoryOptionValue',
        });
    }
  };
}

/** Run shardgate-ctl with `argv` (node, script, ...args) and return the exit code. */
export async function main(argv: string[], program: Command = buildProgram()): Promise<number> {
  for (const command of commandsOf(program)) {
    command.configureOutput({
      outputError: () => {},
      // commander's only other stderr output is the help it prints after an error
      writeErr: () => {},
    });
    command.exitOverride((error) => {
      throw new CommandLineExit(command, error);
    });
  }
  const checkMandatoryOptions = requireMandatoryOptionsLast(program);
  let active = program;
  program.hook('preAction', (_program, actionCommand) => {
    active = actionCommand;
    checkMandatoryOptions(actionCommand);
    const repeated = repeatedOption(actionCommand, argv.slice(2), (option) => option.parseArg === collect);
    if (repeated)
      throw new UserError(`option '${repeated.flags}' given ${repeated.times} times; give it once`);
  });

  if (argv.length <= 2) {
    program.outputHelp();
    return 0;
  }
  const tooLong = argv.slice(2).findIndex((arg) => arg.length > MAX_ARG_CHARS);
  if (tooLong >= 0) {
    // refused before commander or an action could repeat it in its line (once or twice)
    const length = argv[tooLong + 2]!.length;
    writeLine(
      userErrorLine(
        commandNamed(program, argv.slice(2)),
        `argument ${tooLong + 1} is ${length} characters long; no argument takes more than ${MAX_ARG_CHARS}`,
      ),
    );
    return 1;
  }
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommandLineExit) {
      // help, helpDisplayed and version exit 0, their text already on stdout
      if (error.commander.exitCode === 0) return 0;
      writeLine(userErrorLine(error.command, describeRefusal(error.command, error.commander)));
      return 1;
    }
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0;
      writeLine(userErrorLine(active, describeRefusal(active, error)));
      return 1;
    }
    if (error instanceof UserError) {
      writeLine(userErrorLine(active, error.message));
      return error.exitCode;
    }
    if (error instanceof UnreachableError) {
      writeLine(`${NAME}: ${oneLine(error.message)}`);
      return error.exitCode;
    }
    // a bug, not a user error: the stack is worth more than one line
    writeLine(`${NAME}: unexpected error: ${error instanceof Error ? error.stack : String(error)}`);
    return 1;
  }
}
