/**
 * kvm-cli run: boot a kernel (default: the built-in test guest) and exit with the guest's status.
 * With --json, the run summary is the only thing on stdout and the guest console goes to stderr.
 */
import { readFileSync, statSync } from 'node:fs';
import { totalmem } from 'node:os';
import { parse } from '../args.js';
import { parseKnobs } from '../compat-knobs.js';
import { GuestConsole } from '../console.js';
import { openDisks, parseDiskSpec, scratchDisk } from '../disks.js';
import { CliError, UsageError } from '../errors.js';

const USAGE =
  'kvm-cli run [-k KERNEL] [-i INITRD] [-p PARAMS] [-m MEM] [-c CPUS] [-d PATH[,ro][,direct]]… [--rng] [--console serial|virtio] ' +
  '[--debug-port] [--timeout SECONDS] [--no-host-decompress] ' +
  '[--abi VERSION] [--kernel-caps-as VERSION] [--without-cap CAP[,CAP…]] [-v] [--json]';
const MiB = 1024 * 1024;
const DEFAULT_MEM = 256 * MiB;
const MIN_MEM = 4 * MiB;
/** Linux defaults in kvmtool's spirit: serial console, no ACPI/PCI probing, reboot via the i8042, panic ends the VM. */
const LINUX_PARAMS = 'earlyprintk=serial acpi=off pci=off reboot=k panic=-1 i8042.noaux=1 i8042.nopnp=1 i8042.dumbkbd=1';
const GUEST_PARAMS = '';
/** The guest's console, first on the command line: the UART, or hvc0 with --console virtio. */
const CONSOLE_PARAM = { serial: 'console=ttyS0', virtio: 'console=hvc0' } as const;
const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

const OPTIONS = {
  kernel: { type: 'string', short: 'k' },
  initrd: { type: 'string', short: 'i' },
  params: { type: 'string', short: 'p' },
  mem: { type: 'string', short: 'm' },
  cpus: { type: 'string', short: 'c' },
  console: { type: 'string' },
  disk: { type: 'string', short: 'd', multiple: true },
  rng: { type: 'boolean' },
  'debug-port': { type: 'boolean' },
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

function readInput(flag: string, path: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UsageError(`${flag}: ${path}: no such file`);
  }
  if (!st.isFile()) throw new UsageError(`${flag}: ${path} is not a regular file`);
  if (st.size === 0) throw new UsageError(`${flag}: ${path} is empty`);
  try {
    return readFileSync(path);
  } catch (err) {
    throw new UsageError(`${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, USAGE);
  if (values.help) {
    process.stdout.write(`usage: ${USAGE}\n`);
    return 0;
  }
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (usage: ${USAGE})`);
  const str = (k: keyof typeof OPTIONS) => values[k] as string | undefined;
  // `-p "… console=hvc0"` asks for the virtio console as much as --console virtio does.
  const consoleKind = str('console') ?? (/(^|\s)console=hvc\d/.test(str('params') ?? '') ? 'virtio' : 'serial');
  if (consoleKind !== 'serial' && consoleKind !== 'virtio') throw new UsageError(`--console: 'serial' or 'virtio', got '${consoleKind}'`);
  const diskSpecs = ((values.disk as string[] | undefined) ?? []).map(parseDiskSpec);
  const memBytes = str('mem') !== undefined ? parseMem(str('mem')!) : DEFAULT_MEM;
  const cpus = str('cpus') !== undefined ? parseCpus(str('cpus')!) : 1;
  const timeoutMs = str('timeout') !== undefined ? parseTimeout(str('timeout')!) : undefined;
  const json = values.json === true;

  // vCPU threads boot while this thread loads the hypervisor's modules and the spec, creates the
  // VM and loads the kernel: start them before importing anything else of the hypervisor.
  (await import('@kvm-ts/hypervisor/prestart')).prestartVcpuThreads(cpus);
  const hv = await import('@kvm-ts/hypervisor');
  const knobs = parseKnobs(hv, { abi: str('abi'), kernelAs: str('kernel-caps-as'), without: values['without-cap'] as string[] | undefined });
  let kernelPath = str('kernel');
  if (kernelPath === undefined) {
    try {
      kernelPath = hv.builtinGuestPath();
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  const kernel = readInput('--kernel', kernelPath);
  const initrd = str('initrd') !== undefined ? readInput('--initrd', str('initrd')!) : undefined;
  // The built-in guest self-tests every virtio device: it always gets entropy and a virtio console,
  // and a scratch disk it may write when no disk is given. A user kernel gets what it is given.
  const builtin = str('kernel') === undefined;
  const disks = openDisks(hv, diskSpecs);
  let scratch = false;
  if (builtin && disks.length === 0) {
    disks.push(scratchDisk(hv));
    scratch = true;
  }
  const extra = [CONSOLE_PARAM[consoleKind], builtin ? GUEST_PARAMS : LINUX_PARAMS, scratch ? 'kvmts.scratch' : ''];
  const cmdline = [...extra, str('params') ?? ''].filter((w) => w !== '').join(' ');

  const output = json ? process.stderr : process.stdout;
  const log = (line: string) => process.stderr.write(`kvm-cli: ${line}\n`);
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
      timeoutMs,
      console: (bytes) => output.write(bytes),
      log,
      kvmPath: process.env.KVM_TS_DEVICE || undefined,
      abi: knobs.abi,
      mask: knobs.mask,
      disks,
      rng: builtin || values.rng === true,
      virtioConsole: builtin || consoleKind === 'virtio',
      consoleInput: consoleKind,
      consoleFlow: { get writable() { return !output.writableNeedDrain; }, onDrain: (cb) => void output.once('drain', cb) },
    });
  } catch (err) {
    if (err instanceof hv.VmConfigError || err instanceof hv.VirtioConfigError) throw new UsageError(err.message);
    if (err instanceof hv.ImageError || err instanceof hv.GuestMemoryError) throw new UsageError(`--kernel: ${err.message}`);
    throw err;
  }

  const { fallbacks } = machine.vm.caps;
  if (values.verbose === true) {
    for (const f of fallbacks) log(`fallback: ${f.capability} absent: ${f.fallback}`);
    for (const d of machine.virtioStats()) log(`${d.name} at ${d.base}, GSI ${d.gsi}: notifications by ${d.paths.notify}, interrupts by ${d.paths.interrupt}`);
  }
  const vmRun = machine.start();
  const guestConsole = new GuestConsole({ output, input: (b) => machine.feedConsole(b), quit: () => void vmRun.stop('quit from the console (Ctrl-A x)') });
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
    // In-flight disk writes reach their files before they are closed and the VM released.
    await machine.shutdown();
  }

  if (json) {
    const { exitReason, status, wallMs, exits, message, kind, firstKvmRunAt } = summary;
    const ms = (v: number) => Math.round(v * 1000) / 1000;
    // Since this process started (Node's time origin): what start-up costs before the guest runs.
    const firstKvmRunMs = firstKvmRunAt === undefined ? null : ms(firstKvmRunAt - performance.timeOrigin);
    const abi = machine.vm.abi.version;
    const virtio = machine.virtioStats();
    process.stdout.write(`${JSON.stringify({ exitReason, status, kind, message, wallMs: ms(wallMs), firstKvmRunMs, cpus, memMiB: memBytes / MiB, abi, fallbacks, exits, virtio })}\n`);
  }
  if (summary.kind === 'error' || summary.kind === 'timeout') {
    throw new CliError(summary.kind === 'timeout' ? `run: ${summary.message}` : summary.message, summary.status || 1);
  }
  if (summary.kind === 'guest-exit' && summary.status >= 128 && summary.message.startsWith('interrupted by')) log(summary.message);
  return summary.status;
}
