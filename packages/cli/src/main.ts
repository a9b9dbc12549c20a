import { CliError, UsageError } from './errors.js';
import { guardStreams, mustExit, say } from './streams.js';

type Command = (argv: string[]) => Promise<number>;

/** One module per command, loaded on demand so `kvm-cli abi …` never loads the VMM. */
const commands: Record<string, () => Promise<Command>> = {
  run: async () => (await import('./commands/run.js')).run,
  caps: async () => (await import('./commands/caps.js')).caps,
  list: async () => (await import('./commands/control.js')).list,
  pause: async () => (await import('./commands/control.js')).pause,
  resume: async () => (await import('./commands/control.js')).resume,
  stop: async () => (await import('./commands/control.js')).stop,
  stat: async () => (await import('./commands/control.js')).stat,
  debug: async () => (await import('./commands/control.js')).debug,
  console: async () => (await import('./commands/control.js')).attachConsole,
  'abi show': async () => (await import('./commands/abi-spec.js')).show,
  'abi list': async () => (await import('./commands/abi-spec.js')).list,
  'abi generate': async () => (await import('./commands/abi-spec.js')).generate,
  'abi sync': async () => (await import('./commands/abi-sync.js')).sync,
  'abi diff': async () => (await import('./commands/abi-diff.js')).diff,
  'abi check': async () => (await import('./commands/abi-check.js')).check,
};

const HELP = `kvm-cli — a KVM VMM and the KVM ABI spec it is built on

  kvm-cli run [-k KERNEL] [-i INITRD] [-p PARAMS] [-m MEM] [-c CPUS] [--json] …   boot a VM (default: the built-in test guest)
  kvm-cli run --name NAME | --detach | --config FILE.json | --print-config …     named, in the background, from a file
  kvm-cli list [--json]                                      running VMs (name, pid, state, vCPUs, memory, uptime, socket)
  kvm-cli pause|resume|stop NAME|--all                       park every vCPU / let them run / end the VM
  kvm-cli stat NAME [--json]                                 state, exits by reason, vCPUs, devices, memory
  kvm-cli debug NAME [--json]                                each vCPU's registers, code and stack (as lkvm debug)
  kvm-cli console NAME                                       attach to a VM's console (Ctrl-A x detaches)
  kvm-cli caps [--json]                                      this host's KVM API version and capabilities
  kvm-cli abi list                                           pinned spec versions and arches
  kvm-cli abi show [VERSION|SOURCE] [--arch ARCH] [--json]   one spec (default: latest, x86_64)
  kvm-cli abi generate --headers DIR|TREE|git:TREE@REF --arch ARCH [--out F] [--strict]
                                                             generate a spec from uapi headers or a Linux tree
  kvm-cli abi sync                                           download and verify the pinned kernel headers
  kvm-cli abi diff OLD NEW [--format text|json|junit|github] [--only-breaking] [--suppressions FILE] [--arch ARCH]
                                                             classify every difference between two specs
                                                             (OLD/NEW: spec file, pinned id, include dir, Linux tree, git:TREE@REF)
  kvm-cli abi check [--format …] [--baseline DIR|FILE] [--record-baseline [FILE]] [--against SOURCE]
                                                             the CI gate: no unsuppressed binary break
`;

export async function main(argv: string[]): Promise<number> {
  // `kvm-cli abi show --json | head` closes the pipe early: the reader's choice, not an error.
  guardStreams();
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help' || argv[0] === 'help') {
    process.stdout.write(HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const key = argv[0] === 'abi' ? `abi ${argv[1] ?? ''}` : argv[0];
  const load = commands[key];
  if (!load) {
    say(`unknown command '${key.trim()}' (see kvm-cli --help)`);
    return 2;
  }
  const rest = argv.slice(argv[0] === 'abi' ? 2 : 1);
  let code: number;
  try {
    code = await (await load())(rest);
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
