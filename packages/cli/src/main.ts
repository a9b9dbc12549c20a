import { CliError, UsageError } from './errors.js';
import { parse } from './args.js';
import { guardStreams, mustExit, say } from './streams.js';
import { helpText, usageLine, type Command, type CommandSpec } from './usage.js';

/** One module per command, loaded on demand so `kvm-cli abi …` never loads the VMM. */
export const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => {
    const m = await import('./commands/run.js');
    return { spec: m.RUN, run: m.run };
  },
  caps: async () => {
    const m = await import('./commands/caps.js');
    return { spec: m.CAPS, run: m.caps };
  },
  list: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.LIST, run: m.list };
  },
  pause: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.STATE_SPECS.pause, run: m.pause };
  },
  resume: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.STATE_SPECS.resume, run: m.resume };
  },
  stop: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.STATE_SPECS.stop, run: m.stop };
  },
  stat: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.STAT, run: m.stat };
  },
  debug: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.DEBUG, run: m.debug };
  },
  console: async () => {
    const m = await import('./commands/control.js');
    return { spec: m.CONSOLE, run: m.attachConsole };
  },
  'abi list': async () => {
    const m = await import('./commands/abi-spec.js');
    return { spec: m.LIST, run: m.list };
  },
  'abi show': async () => {
    const m = await import('./commands/abi-spec.js');
    return { spec: m.SHOW, run: m.show };
  },
  'abi generate': async () => {
    const m = await import('./commands/abi-spec.js');
    return { spec: m.GENERATE, run: m.generate };
  },
  'abi sync': async () => {
    const m = await import('./commands/abi-sync.js');
    return { spec: m.SYNC, run: m.sync };
  },
  'abi diff': async () => {
    const m = await import('./commands/abi-diff.js');
    return { spec: m.DIFF, run: m.diff };
  },
  'abi check': async () => {
    const m = await import('./commands/abi-check.js');
    return { spec: m.CHECK, run: m.check };
  },
  'abi cache': async () => {
    const m = await import('./commands/abi-cache.js');
    return { spec: m.CACHE, run: m.cache };
  },
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
