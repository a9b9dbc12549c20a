/**
 * kvm-cli run: boot a kernel (default: the built-in test guest) and exit with the guest's status.
 * With --json, the run summary is the only thing on stdout and the guest console goes to stderr.
 */
import { existsSync } from 'node:fs';
import { defaultName, socketPath, socketPathProblem } from '@kvm-ts/hypervisor/control/paths';
import type { NetworkSpec } from '@kvm-ts/hypervisor/net-spec';
import { parse } from '../args.js';
import { FileRefusal, readRegularFile } from '../regular-file.js';
import { parseKnobs } from '../compat-knobs.js';
import { GuestConsole } from '../console.js';
import { openDisks, scratchDisk } from '../disks.js';
import { CliError, UsageError } from '../errors.js';
import { abandonPendingWrites, say, setStreamPolicy } from '../streams.js';
import { configFile, readConfigFile, resolveRunConfig, RUN_OPTIONS, type ResolvedConfig } from '../run-options.js';
import { usageLine, type CommandSpec, type OptionSpec } from '../usage.js';

/** Flags of this invocation only; the VM's own options are the table in run-options.ts. */
const INVOCATION: readonly OptionSpec[] = [
  { flag: 'config', kind: 'string', arg: 'FILE.json', help: 'the VM options from a file (docs/schemas/run-config.schema.json); flags override it' },
  { flag: 'print-config', kind: 'boolean', help: 'print the resolved options as a config file and exit' },
  { flag: 'detach', kind: 'boolean', help: 'run the VM in the background (log in the control directory); print its name' },
  { flag: 'verbose', short: 'v', kind: 'boolean', help: 'say which fallbacks and virtio paths the VM takes' },
  { flag: 'json', kind: 'boolean', help: 'the run summary as one JSON line on stdout; the guest console goes to stderr' },
];
export const RUN: CommandSpec = {
  name: 'run',
  summary: 'boot a VM (default: the built-in test guest, which self-tests its devices) and exit with its status',
  options: [...RUN_OPTIONS, ...INVOCATION],
};
const USAGE = usageLine(RUN);
const MiB = 1024 * 1024;
/** Linux defaults in kvmtool's spirit: serial console, no ACPI/PCI probing, reboot via the i8042, panic ends the VM (--no-acpi). */
const LINUX_PARAMS = 'earlyprintk=serial acpi=off pci=off reboot=k panic=-1 i8042.noaux=1 i8042.nopnp=1 i8042.dumbkbd=1';
/**
 * The kernel parameters for a Linux guest: with ACPI tables (the default) `acpi=off` goes, and so
 * does `reboot=k`, so that reboot takes the FADT's reset register as on a PC (the i8042 stays as
 * Linux's fallback); with --transport pci the kernel must probe PCI, so `pci=off` goes.
 */
function linuxParams(acpi: boolean, transport: 'mmio' | 'pci'): string {
  let params = LINUX_PARAMS;
  if (acpi) params = params.replace(' acpi=off', '').replace(' reboot=k', '');
  if (transport === 'pci') params = params.replace(' pci=off', '');
  return params;
}
const GUEST_PARAMS = '';
/** The guest's console, first on the command line: the UART, or hvc0 with --console virtio. */
const CONSOLE_PARAM = { serial: 'console=ttyS0', virtio: 'console=hvc0' } as const;
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
/** How long a stalled stdout gets after the run ended by timeout or signal. */
const SETTLE_MS = 1000;
/** Set by `run --detach` for the VMM it starts in the background. */
export const DETACHED_ENV = 'KVM_TS_DETACHED';

/**
 * The checks were made when the config was resolved; a file that changed since is still one line.
 * Nothing larger than guest RAM can be loaded, so nothing larger is read.
 */
function readInput(flag: string, path: string, memBytes: number): Uint8Array {
  try {
    return readRegularFile(path, memBytes);
  } catch (err) {
    if (err instanceof FileRefusal && err.size !== undefined) throw new UsageError(`${flag}: ${path} (${err.size} bytes) is larger than the guest's RAM`);
    if (err instanceof FileRefusal) throw new UsageError(`${flag}: cannot read ${path} (${err.reason})`);
    throw err;
  }
}

/** The flags and the --config file, merged (flags win) and checked. */
async function runConfig(values: Record<string, string | boolean | (string | boolean)[] | undefined>): Promise<ResolvedConfig> {
  const flags = values as Record<string, string | boolean | string[] | undefined>;
  if (typeof values.config !== 'string') return resolveRunConfig(flags);
  const { loadZod } = await import('@kvm-ts/hypervisor/control');
  return resolveRunConfig(flags, { path: values.config, values: readConfigFile(values.config, loadZod()) });
}

export async function run(argv: string[]): Promise<number> {
  // --timeout covers everything from here: reading the images, loading the kernel, the run.
  const startedAt = performance.now();
  const args = parse(argv, RUN);
  if (!args) return 0;
  const { values, positionals } = args;
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  const resolved = await runConfig(values);
  const config = resolved.values;
  const json = values.json === true;
  if (values['print-config'] === true) {
    knobsOf(await import('@kvm-ts/hypervisor'), resolved);
    process.stdout.write(`${JSON.stringify(configFile(config), null, 2)}\n`);
    return 0;
  }
  if (values.detach === true) return (await import('../detach.js')).detach(argv, config.name as string | undefined, json);
  return boot(resolved, { json, verbose: values.verbose === true, startedAt });
}

/** The control server at `socket`: a live VMM there is a clash (exit 2), a stale socket is replaced. */
async function claim(name: string, socket: string) {
  const ctl = await import('@kvm-ts/hypervisor/control');
  try {
    return await ctl.ControlServer.listen({ path: socket });
  } catch (err) {
    if (err instanceof ctl.NameInUseError) throw new UsageError(`--name: a VM named '${name}' is already running (${socket})`);
    throw new CliError(`control socket ${socket}: ${(err as Error).message}`);
  }
}

function knobsOf(hv: typeof import('@kvm-ts/hypervisor'), { values: c, label }: ResolvedConfig) {
  const values = { abi: c.abi as string | undefined, kernelAs: c.kernelCapsAs as string | undefined, without: c.withoutCap as string[] };
  return parseKnobs(hv, values, { abi: label('abi'), kernelAs: label('kernelCapsAs'), without: label('withoutCap') });
}

/** Boots the VM with its control socket, runs it to the end, and returns the exit status. */
async function boot(resolved: ResolvedConfig, opts: { json: boolean; verbose: boolean; startedAt: number }): Promise<number> {
  const config = resolved.values;
  const cpus = config.cpus as number;
  const memBytes = config.memory as number;
  const timeoutMs = config.timeout !== undefined ? (config.timeout as number) * 1000 : undefined;

  // vCPU threads boot while this thread loads the hypervisor's modules and the spec, creates the
  // VM and loads the kernel: start them before importing anything else of the hypervisor, but
  // only for a vCPU count the VM can have.
  const prestart = await import('@kvm-ts/hypervisor/prestart');
  if (cpus > prestart.MAX_VCPUS) throw new UsageError(`${resolved.label('cpus')}: cpus must be between 1 and ${prestart.MAX_VCPUS} (the MP table's limit), got ${cpus}`);
  prestart.prestartVcpuThreads(cpus);
  const hv = await import('@kvm-ts/hypervisor');
  const knobs = knobsOf(hv, resolved);
  let kernelPath = config.kernel as string | undefined;
  if (kernelPath === undefined) {
    try {
      kernelPath = hv.builtinGuestPath();
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  const builtin = config.kernel === undefined;
  const kernel = readInput(resolved.label('kernel'), kernelPath, memBytes);
  const initrd = config.initrd !== undefined ? readInput(resolved.label('initrd'), config.initrd as string, memBytes) : undefined;
  // `-p "… console=hvc0"` asks for the virtio console as much as --console virtio does.
  const params = (config.cmdline as string | undefined) ?? '';
  const consoleKind = config.console === 'virtio' || /(^|\s)console=hvc\d/.test(params) ? 'virtio' : 'serial';
  // The built-in guest self-tests every virtio device: it always gets entropy and a virtio console,
  // and a scratch disk it may write when no disk is given. A user kernel gets what it is given.
  const disks = openDisks(hv, (config.disks as import('@kvm-ts/hypervisor').DiskOptions[]) ?? []);
  const scratch = builtin && disks.length === 0;
  if (scratch) disks.push(scratchDisk(hv));

  // The control socket stays off the path to the first KVM_RUN: only a look at its path here; the
  // server (its directory, its modules) comes up once the vCPUs run. Something already at the path
  // (a live VM of that name, or a stale socket) is settled now, so a clash is one line and no guest output.
  const name = (config.name as string | undefined) ?? defaultName();
  const socket = socketPath(name);
  const problem = socketPathProblem(socket);
  if (problem) throw new CliError(`control socket: ${problem}`);
  let server = existsSync(socket) ? await claim(name, socket) : undefined;
  // Networks are opened (a tap attached, passt started, a socket connected) before the VM exists, so
  // a refusal is one line. The built-in guest's default user-mode network is a convenience: when
  // passt is absent or cannot start (no uplink), the guest runs without it and is told so.
  const networks = [...((config.network as NetworkSpec[] | undefined) ?? [])];
  const defaultNetwork = builtin && networks.length === 0;
  if (defaultNetwork) networks.push({ mode: 'user' });
  let backends: import('@kvm-ts/hypervisor').NetBackend[];
  /** Said once the VM exists: a VM refused for another reason is that one line alone. */
  let noNetwork: string | undefined;
  try {
    backends = await hv.openNetBackends(networks, say);
  } catch (err) {
    if (defaultNetwork && err instanceof hv.NetError) {
      noNetwork = `no network device: the built-in guest's default -n mode=user: ${err.message}`;
      backends = [];
    } else {
      for (const d of disks) void d.close();
      await server?.close();
      if (err instanceof hv.NetError) throw new UsageError(`${resolved.label('network')}: ${err.message}`);
      throw err;
    }
  }
  const network = backends.map((backend, i) => ({ backend, mac: networks[i].mac !== undefined ? hv.parseMac(networks[i].mac) : undefined }));
  const transport = (config.transport as 'mmio' | 'pci' | undefined) ?? 'mmio';
  const acpi = config.acpi !== false;
  const extra = [CONSOLE_PARAM[consoleKind], builtin ? GUEST_PARAMS : linuxParams(acpi, transport), scratch ? 'kvmts.scratch' : '', noNetwork !== undefined ? 'kvmts.nonet' : ''];
  const cmdline = [...extra, params].filter((w) => w !== '').join(' ');

  const deadline = timeoutMs === undefined ? undefined : opts.startedAt + timeoutMs;
  const timedOut = () => new CliError(`run: timed out after ${timeoutMs! / 1000} s`, hv.TIMEOUT_STATUS);
  const output = opts.json ? process.stderr : process.stdout;
  let machine: import('@kvm-ts/hypervisor').Machine | undefined;
  let hub: import('@kvm-ts/hypervisor/control').ConsoleHub | undefined;
  /** Console output from before the hub exists, for its backlog. */
  let early: Uint8Array[] | undefined = [];
  const tap = (bytes: Uint8Array) => {
    if (hub) hub.write(bytes);
    else early?.push(bytes.slice());
  };
  // What the console sink hands the terminal, an attached `kvm-cli console` sees too.
  const teed = {
    write: (chunk: Uint8Array) => (tap(chunk), output.write(chunk)),
    once: (event: 'drain', listener: () => void) => output.once(event, listener),
    get writableLength() {
      return output.writableLength;
    },
  };
  const sink = new hv.ConsoleSink(teed);
  try {
    try {
      machine = hv.Machine.create({
        kernel,
        initrd,
        cmdline,
        memBytes,
        cpus,
        hostDecompress: config.hostDecompress as boolean,
        debugPort: config.debugPort as boolean,
        // The guest may set our exit status only when it is ours (the built-in guest) or the user says so.
        debugExit: builtin || config.debugExit === true,
        loadDeadline: deadline,
        console: sink,
        log: say,
        kvmPath: process.env.KVM_TS_DEVICE || undefined,
        abi: knobs.abi,
        mask: knobs.mask,
        disks,
        rng: builtin || config.rng === true,
        virtioConsole: builtin || consoleKind === 'virtio',
        consoleInput: consoleKind,
        network,
        name,
        transport,
        acpi,
      });
    } catch (err) {
      if (err instanceof hv.LoadDeadlineError) throw timedOut();
      if (err instanceof hv.VmConfigError || err instanceof hv.VirtioConfigError) throw new UsageError(err.message);
      if (err instanceof hv.ImageError || err instanceof hv.GuestMemoryError) throw new UsageError(`${resolved.label('kernel')}: ${err.message}`);
      throw err;
    }
    const vm = machine;
    if (noNetwork !== undefined) say(noNetwork);
    const { fallbacks } = vm.vm.caps;
    if (opts.verbose) {
      for (const f of fallbacks) say(`fallback: ${f.capability} absent: ${f.fallback}`);
      for (const d of vm.virtioStats()) {
        const where = 'pci' in d ? `${d.pci} (BAR 0 at ${d.base})` : `${d.base}, GSI ${d.gsi}`;
        say(`${d.name} at ${where}: notifications by ${d.paths.notify}, interrupts by ${'pci' in d ? `MSI-X over ${d.paths.interrupt}` : d.paths.interrupt}`);
      }
    }
    const vmRun = vm.start(deadline === undefined ? {} : { timeoutMs: Math.max(0, deadline - performance.now()), timeoutMessage: `timed out after ${timeoutMs! / 1000} s` });
    setStreamPolicy({
      // Nobody reads the console any more: it is discarded, and the guest runs on to its own status.
      stdoutClosed: () => {
        if (!opts.json) sink.stop();
      },
      stderrClosed: () => {
        if (opts.json) sink.stop();
      },
      failed: (line) => {
        sink.stop();
        vmRun.fail(line);
      },
    });
    // Signals and the terminal first: nothing below may leave them unhandled.
    const guestConsole = new GuestConsole({
      input: (b) => vm.feedConsole(b),
      whenRoom: (resume) => vm.onConsoleRoom(resume),
      quit: () => void vmRun.stop('quit from the console (Ctrl-A x)'),
    });
    const onSignal = (sig: keyof typeof SIGNALS) => {
      guestConsole.restore();
      vmRun.requestExit(128 + SIGNALS[sig], `interrupted by ${sig}`);
    };
    const handlers = Object.keys(SIGNALS).map((sig) => {
      const h = () => onSignal(sig as keyof typeof SIGNALS);
      process.on(sig, h);
      return [sig, h] as const;
    });
    let summary;
    try {
      const ctl = await import('@kvm-ts/hypervisor/control');
      hub = new ctl.ConsoleHub({
        input: (bytes) => vm.feedConsole(bytes),
        unavailable: process.stdin.isTTY ? `the console is on the terminal of the run (pid ${process.pid})` : undefined,
      });
      for (const b of early ?? []) hub.write(b);
      early = undefined;
      if (!server) {
        try {
          server = await claim(name, socket);
        } catch (err) {
          // Another VM took the name while this one started: it keeps it, this one ends.
          await vmRun.stop('name clash');
          throw err;
        }
      }
      const detached = process.env[DETACHED_ENV] === '1';
      if (detached) (await import('../log-rotation.js')).keepLogBounded(ctl.logPath(name));
      server.serve(new hv.MachineControl({ name, socket, machine: vm, run: vmRun, console: hub, log: detached ? ctl.logPath(name) : undefined }));
      // A generated name is news to the person at the terminal; scripts pass --name or read --json.
      if (opts.verbose || (config.name === undefined && process.stderr.isTTY)) say(`VM '${name}', control socket ${socket}`);
      summary = await vmRun.done;
    } finally {
      guestConsole.restore();
      for (const [sig, h] of handlers) process.off(sig, h);
    }

    // A stalled reader gets a second after a timeout or signal (the run must end then), otherwise
    // until the deadline; without a deadline nothing is dropped. What it did not take is said once.
    const ending = summary.kind === 'timeout' || summary.status >= 128;
    const grace = ending ? SETTLE_MS : deadline === undefined ? Infinity : Math.max(deadline - performance.now(), 0) + SETTLE_MS;
    if (!(await sink.settle(grace))) abandonPendingWrites();
    // The run is over: a reader that leaves now changes nothing, a write error still means status 1.
    setStreamPolicy({
      stdoutClosed: () => sink.stop(),
      stderrClosed: () => sink.stop(),
      failed: (line) => {
        say(line);
        process.exitCode = 1;
      },
    });
    if (sink.dropped > 0) say(`console output: ${sink.dropped} bytes dropped (${opts.json ? 'stderr' : 'stdout'} did not take them)`);
    if (summary.unclaimed.logged >= hv.UNCLAIMED_LOG_LINES) say(hv.unclaimedSummaryLine(summary.unclaimed));

    if (opts.json) {
      const { exitReason, status, wallMs, exits, message, kind, firstKvmRunAt, unclaimed } = summary;
      const ms = (v: number) => Math.round(v * 1000) / 1000;
      // Since this process started (Node's time origin): what start-up costs before the guest runs.
      const firstKvmRunMs = firstKvmRunAt === undefined ? null : ms(firstKvmRunAt - performance.timeOrigin);
      const abi = vm.vm.abi.version;
      const consoleDropped = sink.dropped;
      const virtio = vm.virtioStats();
      const line = { exitReason, status, kind, message, wallMs: ms(wallMs), firstKvmRunMs, cpus, memMiB: memBytes / MiB, abi, fallbacks, exits, unclaimed, consoleDropped, virtio, name };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
    if (summary.kind === 'error' || summary.kind === 'timeout') {
      throw new CliError(summary.kind === 'timeout' ? `run: ${summary.message}` : summary.message, summary.status || 1);
    }
    if (summary.kind === 'guest-exit' && summary.status >= 128 && summary.message.startsWith('interrupted by')) say(summary.message);
    return summary.status;
  } finally {
    // Requests in flight (a `stop`) are answered before the socket goes; in-flight disk writes reach
    // their files before they are closed; the VM's fds go last.
    hub?.close();
    await server?.close();
    await machine?.shutdown();
  }
}
