/**
 * A bootable machine: the VM, the kernel loaded by the loader, the kvmtool-like legacy devices and
 * the virtio devices asked for (disks, entropy, console, network), on virtio-mmio or on a PCI bus
 * (docs/design-vmm.md, "Machine model").
 * Device placement (docs/design-vmm.md): the UART, i8042, CMOS and virtio transports have state
 * shared by all vCPUs and live on the main thread; the debug-exit and POST (0x80) ports are
 * stateless enough to live in every vCPU thread, so their exits never leave it. The debug-exit port
 * lets the guest choose the VMM's exit status, so it exists only when asked for (the built-in
 * guest, --debug-exit).
 */
import { ConsoleInput } from './console/input.js';
import { ConsoleSink } from './console/sink.js';
import { IoBus } from './devices/bus.js';
import { Cmos } from './devices/legacy/cmos.js';
import type { DeviceHost } from './devices/device.js';
import { DEBUG_EXIT_PORT } from './devices/legacy/debug-exit.js';
import { DEBUG_PORT } from './devices/legacy/debug-port.js';
import { I8042 } from './devices/legacy/i8042.js';
import { Serial } from './devices/legacy/serial.js';
import { AcpiPm } from './devices/legacy/acpi-pm.js';
import { describeAcpiMachine } from './machine-acpi.js';
import { loadKernel, type BootInfo } from './loader/index.js';
import { abiVersion, type LoadedAbi } from './kvm/abi.js';
import type { CapabilityMask } from './kvm/capabilities.js';
import { VmRun, type LocalDevice, type RunSummary } from './runner.js';
import { moduleUrl } from './vcpu/pool.js';
import { VirtioBlk } from './devices/virtio/blk.js';
import { VirtioConsole } from './devices/virtio/console.js';
import type { BlockBackend } from './devices/virtio/disk-image.js';
import { VirtioPlatform, virtioCmdline, virtioReserved, type VirtioDeviceStats } from './devices/virtio/platform.js';
import { VirtioPciPlatform, type VirtioPciDeviceStats } from './devices/virtio/pci-platform.js';
import { pciReserved } from './devices/pci/bus.js';
import type { VirtioDevice } from './devices/virtio/device.js';
import { VirtioRng, type RngOptions } from './devices/virtio/rng.js';
import { defaultMac, VirtioNet, type NetBackend } from './devices/virtio/net.js';
import { Vm } from './vm.js';

export interface MachineOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memBytes: number;
  cpus: number;
  hostDecompress: boolean;
  /** Log every write to port 0x80 with the time since start. */
  debugPort?: boolean;
  /** The debug-exit port 0x501, through which the guest sets the exit status (default: absent). */
  debugExit?: boolean;
  timeoutMs?: number;
  /** The timeout's message, when the caller's budget started before the run (see RunOptions). */
  timeoutMessage?: string;
  /** performance.now() by which the kernel must be loaded (the loader stops with LoadDeadlineError). */
  loadDeadline?: number;
  /** Guest console output: a sink (back-pressure, bounded) or a function that takes bytes at once. */
  console: ConsoleSink | ((bytes: Uint8Array) => void);
  /** VMM diagnostics (unclaimed ports, the debug port). */
  log: (line: string) => void;
  kvmPath?: string;
  /** The spec the VM runs on (default: the newest pinned one): a loaded one, or an id as `kvm-cli run --abi` takes it ("5.10"). */
  abi?: LoadedAbi | string;
  /** Capabilities read as absent (`--kernel-caps-as`, `--without-cap`). */
  mask?: CapabilityMask;
  /** virtio-blk disks, already opened and checked: vda, vdb, … in this order. The machine closes them. */
  disks?: BlockBackend[];
  /** A virtio-rng device (with its rate limit). */
  rng?: boolean | RngOptions;
  /** A virtio console (hvc0) next to the UART. */
  virtioConsole?: boolean;
  /** Which console gets input from feedConsole(): the UART (default) or hvc0. */
  consoleInput?: 'serial' | 'virtio';
  /** virtio-net devices, eth0, eth1, … in this order, each on an opened backend. The machine closes the backends. */
  network?: NetDeviceOptions[];
  /** The VM's name: the default MAC of each network device derives from it. */
  name?: string;
  /** Where the virtio devices sit: virtio-mmio windows (the default) or a PCI bus with virtio-pci functions. */
  transport?: VirtioTransportKind;
  /** ACPI tables next to the MP table, and the PM1/reset registers they describe (default: MP table only). */
  acpi?: boolean;
}

export type VirtioTransportKind = 'mmio' | 'pci';
export const VIRTIO_TRANSPORTS: readonly VirtioTransportKind[] = ['mmio', 'pci'];

export interface NetDeviceOptions {
  backend: NetBackend;
  /** Default: a stable locally administered address derived from the VM's name and the device's index. */
  mac?: Uint8Array;
}

const DISK_NAMES = 'abcdefghijklmnopqrstuvwxyz';

export class Machine {
  readonly serial: Serial;
  private readonly bus: IoBus;
  private readonly localDevices: LocalDevice[];
  private run: VmRun | undefined;
  private readonly startedAt = performance.timeOrigin + performance.now();
  private readonly sink: ConsoleSink;
  /** Console input waiting for room in the receiving console (the UART's FIFO, or hvc0's buffers). */
  private readonly input: ConsoleInput;
  private readonly virtio: VirtioPlatform | VirtioPciPlatform;
  readonly virtioConsole: VirtioConsole | undefined;
  private devicesClosed: Promise<void> | undefined;

  private constructor(
    readonly vm: Vm,
    readonly boot: BootInfo,
    private readonly opts: MachineOptions,
  ) {
    const sink = (this.sink = opts.console instanceof ConsoleSink ? opts.console : new ConsoleSink(opts.console));
    const host: DeviceHost = {
      setIrq: (gsi, level) => vm.setIrqLine(gsi, level),
      consoleWrite: (bytes) => sink.write(bytes),
      consoleWritable: () => sink.writable,
      onConsoleWritable: (listener) => sink.onWritable(listener),
      requestExit: (status, reason) => this.run?.requestExit(status, reason),
      log: opts.log,
      now: () => performance.timeOrigin + performance.now() - this.startedAt,
    };
    this.bus = new IoBus(opts.log);
    this.serial = new Serial(host);
    this.bus.registerPio(this.serial);
    this.bus.registerPio(new I8042(host));
    this.bus.registerPio(new Cmos(host, { memBytes: opts.memBytes }));
    if (opts.acpi) this.bus.registerPio(new AcpiPm(host));
    this.virtio = opts.transport === 'pci' ? new VirtioPciPlatform(vm, vm.memory, this.bus, opts.log) : new VirtioPlatform(vm, vm.memory, this.bus, opts.log);
    try {
      this.virtioConsole = Machine.addVirtioDevices(this.virtio, opts, sink);
    } catch (err) {
      void this.virtio.close(true); // the eventfds of the devices already added
      throw err;
    }
    this.input = new ConsoleInput(opts.consoleInput === 'virtio' && this.virtioConsole ? this.virtioConsole : this.serial);
    this.localDevices = [
      { spec: { module: moduleUrl('devices/legacy/debug-port'), exportName: 'DebugPort', options: { enabled: opts.debugPort ?? false } }, ports: [[DEBUG_PORT, 1]] },
    ];
    if (opts.debugExit) {
      this.localDevices.push({ spec: { module: moduleUrl('devices/legacy/debug-exit'), exportName: 'DebugExit', options: { port: DEBUG_EXIT_PORT } }, ports: [[DEBUG_EXIT_PORT, 1]] });
    }
  }

  /** How many virtio devices `opts` asks for (each takes a window and a GSI). */
  private static virtioCount(opts: MachineOptions): number {
    return (opts.disks?.length ?? 0) + (opts.rng ? 1 : 0) + (opts.virtioConsole ? 1 : 0) + (opts.network?.length ?? 0);
  }

  /** Disks first (vda…), then entropy, then the console, then the network: the order of their windows and GSIs. */
  private static addVirtioDevices(platform: { add(device: VirtioDevice): unknown }, opts: MachineOptions, sink: ConsoleSink): VirtioConsole | undefined {
    (opts.disks ?? []).forEach((disk, i) => platform.add(new VirtioBlk(disk, `vd${DISK_NAMES[i] ?? i}`)));
    if (opts.rng) platform.add(new VirtioRng(typeof opts.rng === 'object' ? opts.rng : {}));
    let con: VirtioConsole | undefined;
    if (opts.virtioConsole) {
      // hvc0 shares the UART's sink: one back-pressure, one bound, whichever console the guest uses.
      con = new VirtioConsole({ write: (b) => sink.write(b), get writable() { return sink.writable; }, onDrain: (cb) => sink.onWritable(cb) });
      platform.add(con);
    }
    (opts.network ?? []).forEach((n, i) => platform.add(new VirtioNet(n.backend, n.mac ?? defaultMac(opts.name ?? 'kvm-ts', i), i)));
    return con;
  }

  /**
   * Creates the VM and loads the kernel, with `virtio_mmio.device=` for each virtio-mmio device
   * appended to the command line (PCI devices are found by enumeration: the bus's windows are
   * e820-reserved instead); releases everything (the disks too) if anything fails.
   */
  static create(opts: MachineOptions): Machine {
    let vm: Vm | undefined;
    try {
      vm = Vm.create({ memBytes: opts.memBytes, cpus: opts.cpus, kvmPath: opts.kvmPath, abi: typeof opts.abi === 'string' ? abiVersion(opts.abi) : opts.abi, mask: opts.mask });
      const pci = opts.transport === 'pci';
      const count = pci ? 0 : Machine.virtioCount(opts);
      const boot = loadKernel(vm.memory, {
        kernel: opts.kernel,
        initrd: opts.initrd,
        cmdline: count > 0 ? `${opts.cmdline} ${virtioCmdline(count)}`.trim() : opts.cmdline,
        cpus: opts.cpus,
        hostDecompress: opts.hostDecompress,
        deadline: opts.loadDeadline,
        reserved: pci ? pciReserved() : virtioReserved(count),
        acpi: opts.acpi ? describeAcpiMachine({ cpus: opts.cpus, transport: pci ? 'pci' : 'mmio', virtioMmio: count }) : undefined,
      });
      vm.setBootRegisters(boot);
      return new Machine(vm, boot, opts);
    } catch (err) {
      vm?.close();
      for (const d of opts.disks ?? []) void d.close();
      for (const n of opts.network ?? []) void n.backend.close();
      throw err;
    }
  }

  /** Starts the vCPUs; `timing` overrides the options' timeout (a caller whose budget began earlier). */
  start(timing: Pick<MachineOptions, 'timeoutMs' | 'timeoutMessage'> = {}): VmRun {
    if (this.run) throw new Error('machine already started');
    this.run = VmRun.start(this.vm, {
      bus: this.bus,
      localDevices: this.localDevices,
      console: this.sink,
      log: this.opts.log,
      timeoutMs: timing.timeoutMs ?? this.opts.timeoutMs,
      timeoutMessage: timing.timeoutMessage ?? this.opts.timeoutMessage,
      startedAt: this.startedAt,
    });
    return this.run;
  }

  /** Boots, runs to the end, and releases the VM (after the devices' in-flight requests). */
  async runToEnd(): Promise<RunSummary> {
    const run = this.start();
    try {
      return await run.done;
    } finally {
      await this.shutdown();
    }
  }

  /** Every main-thread device with what it counted so far (`kvm-cli stat`). */
  devices(): Array<{ name: string; bus: 'pio' | 'mmio'; counters: Record<string, number> }> {
    return this.bus.devices().map(({ bus, device }) => ({ name: device.name, bus, counters: device.counters?.() ?? {} }));
  }

  /** Counters and notification/interrupt paths of every virtio device. */
  virtioStats(): Array<VirtioDeviceStats | VirtioPciDeviceStats> {
    return this.virtio.stats();
  }

  /**
   * Console input for the UART, or for hvc0 when `consoleInput` is 'virtio'; what the guest has not
   * taken yet waits in a bounded queue. False when it is full: pause the source until
   * onConsoleRoom() calls back.
   */
  feedConsole(bytes: Uint8Array): boolean {
    return this.input.push(bytes);
  }

  /** Calls `listener` once, when console input has room again. */
  onConsoleRoom(listener: () => void): void {
    this.input.onRoom(listener);
  }

  /**
   * Stops the devices and releases the VM. Guest RAM stays mapped until no disk request is in
   * flight any more (requests move bytes straight between files and guest RAM), so with virtio
   * devices the VM itself is released a little later: await shutdown() to know when.
   */
  close(): void {
    this.input.close();
    if (this.devicesClosed) return;
    if (this.virtio.count === 0) {
      this.devicesClosed = Promise.resolve();
      this.vm.close();
      return;
    }
    this.devicesClosed = this.virtio.close(true).finally(() => this.vm.close());
  }

  /** close(), then waits until in-flight writes reached their files, the files are closed and the VM is released. */
  async shutdown(): Promise<void> {
    this.close();
    await this.devicesClosed;
  }
}
