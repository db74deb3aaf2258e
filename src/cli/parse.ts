// argv → which command, its options and its arguments, with node:util
// parseArgs over the options declared in spec.ts.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';
import { COMMANDS, GROUPS, findCommand, subcommands, type CommandSpec } from './spec.js';

export type Values = Record<string, string | boolean | string[] | undefined>;

export type Invocation =
  | { kind: 'help'; text: 'main' | CommandSpec | { group: string } }
  | { kind: 'version' }
  | { kind: 'none' }
  | { kind: 'run'; command: CommandSpec; values: Values; positionals: string[] };

function optionsOf(c: CommandSpec): NonNullable<ParseArgsConfig['options']> {
  return Object.fromEntries(Object.entries(c.options).map(([name, o]) => [name, { type: o.type, ...(o.short && { short: o.short }), ...(o.multiple && { multiple: true }) }]));
}

/** How many words name the command: 2 for `batch submit`, else 1. */
const commandWords = (argv: string[]) => (argv[0]! in GROUPS && argv[1] !== undefined && !argv[1].startsWith('-') ? 2 : 1);

/** Which command argv names, and the arguments after its name. */
function commandOf(argv: string[]): { command: CommandSpec | { group: string }; rest: string[] } {
  const [first = '', second] = argv;
  if (first in GROUPS) {
    if (second === '--help' || second === '-h') return { command: { group: first }, rest: argv.slice(1) };
    if (second === undefined) throw new UsageError(`\`${first}\` needs a subcommand: ${subcommands(first).map((c) => c.name.split(' ')[1]).join(', ')}`, first);
    const sub = findCommand(`${first} ${second}`);
    if (!sub) {
      throw new UsageError(`unknown ${second.startsWith('-') ? 'option' : 'subcommand'} ${JSON.stringify(second)} for \`${first}\`; use one of: ${subcommands(first).map((c) => c.name.split(' ')[1]).join(', ')}`, first);
    }
    return { command: sub, rest: argv.slice(2) };
  }
  const command = findCommand(first);
  if (!command) {
    const names = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0]))].join(', ');
    throw new UsageError(`unknown ${first.startsWith('-') ? 'option' : 'command'} ${JSON.stringify(first)}; the commands are: ${names}`);
  }
  return { command, rest: argv.slice(1) };
}

/**
 * For commands that take a command line of their own (submit): the options
 * are what comes before its first positional (or before `--`).
 */
function splitCommandLine(c: CommandSpec, args: string[]): { options: string[]; commandLine: string[] } {
  const { tokens } = parseArgs({ args, options: optionsOf(c), strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional' || t.kind === 'option-terminator');
  if (!first) return { options: args, commandLine: [] };
  return first.kind === 'option-terminator'
    ? { options: args.slice(0, first.index), commandLine: args.slice(first.index + 1) }
    : { options: args.slice(0, first.index), commandLine: args.slice(first.index) };
}

function parseFor(c: CommandSpec, args: string[]): { values: Values; positionals: string[] } {
  let split = { options: args, commandLine: [] as string[] };
  if (c.commandLine) split = splitCommandLine(c, args);
  try {
    const { values, positionals } = parseArgs({ args: split.options, options: optionsOf(c), strict: true, allowPositionals: !c.commandLine });
    return { values: values as Values, positionals: c.commandLine ? split.commandLine : positionals };
  } catch (err) {
    // parseArgs says e.g. "Unknown option '--bogus'. To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- \"--bogus\""
    const message = (err as Error).message.split('. ')[0]!.replace(/^Unknown option '([^']*)'$/, 'unknown option "$1"').replace(/^Option '([^']*)' argument missing$/, 'option "$1" needs a value');
    throw new UsageError(`${message} for \`${c.name}\``, c.name);
  }
}

const GLOBAL = { server: { type: 'string' }, json: { type: 'boolean' } } as const;

/** `--server URL` and `--json` may come before the command too: `jobrunner --server URL ls`. */
function globalOptions(argv: string[]): { global: string[]; rest: string[] } {
  const { tokens } = parseArgs({ args: argv, options: GLOBAL, strict: false, allowPositionals: true, tokens: true });
  let end = 0;
  for (const t of tokens) {
    if (t.kind !== 'option' || !(t.name in GLOBAL)) break;
    end = t.index + (t.value !== undefined && !t.inlineValue ? 2 : 1);
  }
  return { global: argv.slice(0, end), rest: argv.slice(end) };
}

export function parseCommandLine(full: string[]): Invocation {
  const { global, rest: argv } = globalOptions(full);
  if (global.length) {
    if (argv.length === 0) throw new UsageError(`${global[0]} goes with a client command, e.g. \`jobrunner ${global.join(' ')} ls\``);
    // The command parses them with its own options, which report any that do not apply.
    return parseCommandLine([...argv.slice(0, commandWords(argv)), ...global, ...argv.slice(commandWords(argv))]);
  }
  if (argv.length === 0) return { kind: 'none' };
  const [first] = argv;
  if (first === '--version' || first === '-v') {
    if (argv.length > 1) throw new UsageError(`${first} takes no arguments`);
    return { kind: 'version' };
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    if (argv.length === 1) return { kind: 'help', text: 'main' };
    const { command } = commandOf(argv.slice(1));
    return { kind: 'help', text: command };
  }
  const { command, rest } = commandOf(argv);
  if ('group' in command) return { kind: 'help', text: command };
  const { values, positionals } = parseFor(command, rest);
  if (values.help) return { kind: 'help', text: command };
  const [min, max] = command.positionals;
  if (positionals.length < min) throw new UsageError(`\`${command.name}\` needs ${command.args.replace(/\[[^\]]*\]/g, '').trim() || 'an argument'}`, command.name);
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])} for \`${command.name}\``, command.name);
  return { kind: 'run', command, values, positionals };
}
