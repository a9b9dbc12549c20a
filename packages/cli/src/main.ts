import { CliError, UsageError } from './errors.js';
import { parse } from './args.js';
import { guardStreams, mustExit, say } from './streams.js';
import { helpText, usageLine, type Command, type CommandSpec } from './usage.js';

/** A command from its module, loaded on demand: which export is its option table, which its function. */
function command<M>(load: () => Promise<M>, spec: (m: M) => CommandSpec, fn: (m: M) => Command['run']): () => Promise<Command> {
  return async () => {
    const m = await load();
    return { spec: spec(m), run: fn(m) };
  };
}
const runModule = () => import('./commands/run.js');
const capsModule = () => import('./commands/caps.js');
const control = () => import('./commands/control.js');
const abiSpec = () => import('./commands/abi-spec.js');

/** One module per command, loaded on demand so `kvm-cli abi …` never loads the VMM. */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  run: command(runModule, (m) => m.RUN, (m) => m.run),
  caps: command(capsModule, (m) => m.CAPS, (m) => m.caps),
  list: command(control, (m) => m.LIST, (m) => m.list),
  pause: command(control, (m) => m.STATE_SPECS.pause, (m) => m.pause),
  resume: command(control, (m) => m.STATE_SPECS.resume, (m) => m.resume),
  stop: command(control, (m) => m.STATE_SPECS.stop, (m) => m.stop),
  stat: command(control, (m) => m.STAT, (m) => m.stat),
  debug: command(control, (m) => m.DEBUG, (m) => m.debug),
  console: command(control, (m) => m.CONSOLE, (m) => m.attachConsole),
  'abi list': command(abiSpec, (m) => m.LIST, (m) => m.list),
  'abi show': command(abiSpec, (m) => m.SHOW, (m) => m.show),
  'abi generate': command(abiSpec, (m) => m.GENERATE, (m) => m.generate),
  'abi sync': command(() => import('./commands/abi-sync.js'), (m) => m.SYNC, (m) => m.sync),
  'abi diff': command(() => import('./commands/abi-diff.js'), (m) => m.DIFF, (m) => m.diff),
  'abi check': command(() => import('./commands/abi-check.js'), (m) => m.CHECK, (m) => m.check),
  'abi cache': command(() => import('./commands/abi-cache.js'), (m) => m.CACHE, (m) => m.cache),
  help: async () => ({ spec: HELP_SPEC, run: help }),
};

const HELP_SPEC: CommandSpec = { name: 'help', args: '[COMMAND…]', summary: "a command's help (the same as COMMAND --help); without one, every command", options: [] };

/** Every command's usage line and summary, from the same tables their parsers and --help use. */
async function overview(prefix = ''): Promise<string> {
  const lines = [prefix === '' ? 'kvm-cli — a KVM VMM and the KVM ABI spec it is built on' : `kvm-cli ${prefix.trim()} — the KVM ABI spec: pinned, generated, compared`, ''];
  for (const [name, load] of Object.entries(COMMANDS)) {
    if (!name.startsWith(prefix)) continue;
    const { spec } = await load();
    lines.push(`  ${usageLine(spec)}`, `      ${spec.summary}`);
  }
  lines.push('', `kvm-cli ${prefix}COMMAND --help (or kvm-cli help ${prefix}COMMAND): a command's options, one line each`);
  return `${lines.join('\n')}\n`;
}

/** `kvm-cli help [COMMAND…]`. */
async function help(argv: string[]): Promise<number> {
  const args = parse(argv, HELP_SPEC);
  if (!args) return 0;
  const words = args.positionals;
  if (words.length === 0) process.stdout.write(await overview());
  else if (words.join(' ') === 'abi') process.stdout.write(await overview('abi '));
  else {
    const load = COMMANDS[words.join(' ')];
    if (!load) {
      say(`unknown command '${words.join(' ')}' (see kvm-cli --help)`);
      return 2;
    }
    process.stdout.write(helpText((await load()).spec));
  }
  return 0;
}

const isHelp = (word: string | undefined) => word === '-h' || word === '--help';

export async function main(argv: string[]): Promise<number> {
  // `kvm-cli abi show --json | head` closes the pipe early: the reader's choice, not an error.
  guardStreams();
  if (argv.length === 0 || isHelp(argv[0])) {
    process.stdout.write(await overview());
    return argv.length === 0 ? 2 : 0;
  }
  if (argv[0] === 'abi' && isHelp(argv[1])) {
    process.stdout.write(await overview('abi '));
    return 0;
  }
  const key = argv[0] === 'abi' ? `abi ${argv[1] ?? ''}` : argv[0];
  const load = COMMANDS[key];
  if (!load) {
    say(`unknown command '${key.trim()}' (see kvm-cli --help)`);
    return 2;
  }
  const rest = argv.slice(argv[0] === 'abi' ? 2 : 1);
  let code: number;
  try {
    code = await (await load()).run(rest);
  } catch (err) {
    code = report(err);
  }
  // Give stderr a turn to take the last lines, then leave writes a stalled reader will never take.
  if (mustExit()) setImmediate(() => process.exit(code));
  return code;
}

/** Every failure is one line; a stack trace only with KVM_TS_DEBUG=1. */
function report(err: unknown): number {
  if (process.env.KVM_TS_DEBUG === '1' && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  if (err instanceof UsageError) {
    say(err.message);
    return 2;
  }
  const msg = err instanceof Error ? err.message : String(err);
  say(msg.split('\n')[0]);
  return err instanceof CliError ? err.exitCode : 1;
}
