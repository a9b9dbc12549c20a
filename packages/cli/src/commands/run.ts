/**
 * kvm-cli run: boot a kernel (default: the built-in test guest) and exit with the guest's status.
 * With --json, the run summary is the only thing on stdout and the guest console goes to stderr.
 */
import { readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { parse } from '../args.js';
import { parseKnobs } from '../compat-knobs.js';
import { GuestConsole } from '../console.js';
import { CliError, UsageError } from '../errors.js';
import { abandonPendingWrites, say, setStreamPolicy } from '../streams.js';

const USAGE =
  'kvm-cli run [-k KERNEL] [-i INITRD] [-p PARAMS] [-m MEM] [-c CPUS] [--console serial] [--debug-port] [--debug-exit] [--timeout SECONDS] [--no-host-decompress] ' +
  '[--abi VERSION] [--kernel-caps-as VERSION] [--without-cap CAP[,CAP…]] [-v] [--json]';
const MiB = 1024 * 1024;
const DEFAULT_MEM = 256 * MiB;
const MIN_MEM = 4 * MiB;
/** Linux defaults in kvmtool's spirit: serial console, no ACPI/PCI probing, reboot via the i8042, panic ends the VM. */
const LINUX_PARAMS = 'console=ttyS0 earlyprintk=serial acpi=off pci=off reboot=k panic=-1 i8042.noaux=1 i8042.nopnp=1 i8042.dumbkbd=1';
const GUEST_PARAMS = 'console=ttyS0';
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;
/** How long a stalled stdout gets after the run ended by timeout or signal. */
const SETTLE_MS = 1000;

const OPTIONS = {
  kernel: { type: 'string', short: 'k' },
  initrd: { type: 'string', short: 'i' },
  params: { type: 'string', short: 'p' },
  mem: { type: 'string', short: 'm' },
  cpus: { type: 'string', short: 'c' },
  console: { type: 'string' },
  'debug-port': { type: 'boolean' },
  'debug-exit': { type: 'boolean' },
  timeout: { type: 'string' },
  'no-host-decompress': { type: 'boolean' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
  help: { type: 'boolean', short: 'h' },
  abi: { type: 'string' },
  'kernel-caps-as': { type: 'string' },
  'without-cap': { type: 'string', multiple: true },
} as const;

/** "256" (MiB), or a number with a K, M or G suffix; a whole number of 4 KiB pages. */
export function parseMem(text: string): number {
  const m = /^(\d+)([KMG])?i?B?$/i.exec(text.trim());
  if (!m) throw new UsageError(`--mem: '${text}' is not a size (e.g. 256, 512M, 2G)`);
  const unit = { K: 1024, M: MiB, G: 1024 * MiB }[(m[2] ?? 'M').toUpperCase() as 'K' | 'M' | 'G'];
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes)) throw new UsageError(`--mem: '${text}' is too large`);
  if (bytes % 4096 !== 0) throw new UsageError(`--mem: ${text} is not a whole number of 4 KiB pages`);
  if (bytes < MIN_MEM) throw new UsageError(`--mem: ${text} is too small (at least ${MIN_MEM / MiB} MiB)`);
  const host = totalmem();
  if (bytes > host) throw new UsageError(`--mem: ${text} is more than this host's ${Math.floor(host / MiB)} MiB of RAM`);
  return bytes;
}

export function parseCpus(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`--cpus: '${text}' is not a whole number`);
  const n = Number(text);
  if (n < 1) throw new UsageError('--cpus: at least 1 vCPU is needed');
  return n;
}

export function parseTimeout(text: string): number {
  const s = Number(text);
  if (text.trim() === '' || !Number.isFinite(s) || s <= 0) throw new UsageError(`--timeout: '${text}' is not a positive number of seconds`);
  if (s > 2_000_000) throw new UsageError(`--timeout: ${text} s is too long`);
  return s * 1000;
}

/** A regular, non-empty file no larger than guest RAM (nothing bigger can be loaded). */
function readInput(flag: string, path: string, memBytes: number): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${flag}: ${path}: no such file`);
  }
  if (!st.isFile()) throw new UsageError(`${flag}: ${path} is not a regular file`);
  if (st.size === 0) throw new UsageError(`${flag}: ${path} is empty`);
  if (st.size > memBytes) throw new UsageError(`${flag}: ${path} (${st.size} bytes) is larger than the guest's RAM`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export async function run(argv: string[]): Promise<number> {
  // --timeout covers everything from here: reading the images, loading the kernel, the run.
  const startedAt = performance.now();
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  if (values.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  const str = (k: keyof typeof OPTIONS) => values[k] as string | undefined;
  if (str('console') !== undefined && str('console') !== 'serial') throw new UsageError(`--console: only 'serial' is supported, got '${str('console')}'`);
  const memBytes = str('mem') !== undefined ? parseMem(str('mem')!) : DEFAULT_MEM;
  const cpus = str('cpus') !== undefined ? parseCpus(str('cpus')!) : 1;
  const timeoutMs = str('timeout') !== undefined ? parseTimeout(str('timeout')!) : undefined;
  const json = values.json === true;

  // vCPU threads boot while this thread loads the hypervisor's modules and the spec, creates the
  // VM and loads the kernel: start them before importing anything else of the hypervisor, but
  // only for a vCPU count the VM can have.
  const prestart = await import('@kvm-ts/hypervisor/prestart');
  if (cpus > prestart.MAX_VCPUS) throw new UsageError(`--cpus: cpus must be between 1 and ${prestart.MAX_VCPUS} (the MP table's limit), got ${cpus}`);
  prestart.prestartVcpuThreads(cpus);
  const hv = await import('@kvm-ts/hypervisor');
  const knobs = parseKnobs(hv, { abi: str('abi'), kernelAs: str('kernel-caps-as'), without: values['without-cap'] as string[] | undefined });
  const builtin = str('kernel') === undefined;
  let kernelPath = str('kernel');
  if (kernelPath === undefined) {
    try {
      kernelPath = hv.builtinGuestPath();
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  const kernel = readInput('--kernel', kernelPath, memBytes);
  const initrd = str('initrd') !== undefined ? readInput('--initrd', str('initrd')!, memBytes) : undefined;
  const defaults = builtin ? GUEST_PARAMS : LINUX_PARAMS;
  const cmdline = str('params') ? `${defaults} ${str('params')}` : defaults;

  const deadline = timeoutMs === undefined ? undefined : startedAt + timeoutMs;
  const timedOut = () => new CliError(`run: timed out after ${timeoutMs! / 1000} s`, hv.TIMEOUT_STATUS);
  const output = json ? process.stderr : process.stdout;
  const sink = new hv.ConsoleSink(output);
  let machine: import('@kvm-ts/hypervisor').Machine;
  try {
    machine = hv.Machine.create({
      kernel,
      initrd,
      cmdline,
      memBytes,
      cpus,
      hostDecompress: values['no-host-decompress'] !== true,
      debugPort: values['debug-port'] === true,
      // The guest may set our exit status only when it is ours (the built-in guest) or the user says so.
      debugExit: builtin || values['debug-exit'] === true,
      loadDeadline: deadline,
      console: sink,
      log: say,
      kvmPath: process.env.KVM_TS_DEVICE || undefined,
      abi: knobs.abi,
      mask: knobs.mask,
    });
  } catch (err) {
    if (err instanceof hv.LoadDeadlineError) throw timedOut();
    if (err instanceof hv.VmConfigError) throw new UsageError(err.message);
    if (err instanceof hv.ImageError || err instanceof hv.GuestMemoryError) throw new UsageError(`--kernel: ${err.message}`);
    throw err;
  }

  const { fallbacks } = machine.vm.caps;
  if (values.verbose === true) for (const f of fallbacks) say(`fallback: ${f.capability} absent: ${f.fallback}`);
  const vmRun = machine.start(deadline === undefined ? {} : { timeoutMs: Math.max(0, deadline - performance.now()), timeoutMessage: `timed out after ${timeoutMs! / 1000} s` });
  setStreamPolicy({
    // Nobody reads the console any more: it is discarded, and the guest runs on to its own status.
    stdoutClosed: () => {
      if (!json) sink.stop();
    },
    stderrClosed: () => {
      if (json) sink.stop();
    },
    failed: (line) => {
      sink.stop();
      vmRun.fail(line);
    },
  });
  const guestConsole = new GuestConsole({
    input: (b) => machine.feedConsole(b),
    whenRoom: (resume) => machine.onConsoleRoom(resume),
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
    summary = await vmRun.done;
  } finally {
    guestConsole.restore();
    for (const [sig, h] of handlers) process.off(sig, h);
    machine.close();
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
  if (sink.dropped > 0) say(`console output: ${sink.dropped} bytes dropped (${json ? 'stderr' : 'stdout'} did not take them)`);
  if (summary.unclaimed.logged >= hv.UNCLAIMED_LOG_LINES) say(hv.unclaimedSummaryLine(summary.unclaimed));

  if (json) {
    const { exitReason, status, wallMs, exits, message, kind, firstKvmRunAt, unclaimed } = summary;
    const ms = (v: number) => Math.round(v * 1000) / 1000;
    // Since this process started (Node's time origin): what start-up costs before the guest runs.
    const firstKvmRunMs = firstKvmRunAt === undefined ? null : ms(firstKvmRunAt - performance.timeOrigin);
    const consoleDropped = sink.dropped;
    const abi = machine.vm.abi.version;
    process.stdout.write(`${JSON.stringify({ exitReason, status, kind, message, wallMs: ms(wallMs), firstKvmRunMs, cpus, memMiB: memBytes / MiB, abi, fallbacks, exits, unclaimed, consoleDropped })}\n`);
  }
  if (summary.kind === 'error' || summary.kind === 'timeout') {
    throw new CliError(summary.kind === 'timeout' ? `run: ${summary.message}` : summary.message, summary.status || 1);
  }
  if (summary.kind === 'guest-exit' && summary.status >= 128 && summary.message.startsWith('interrupted by')) say(summary.message);
  return summary.status;
}
