/**
 * A bootable machine: the VM, the kernel loaded by the loader, and the kvmtool-like legacy devices.
 * Device placement (docs/design-vmm.md): the UART, i8042 and CMOS have state shared by all vCPUs
 * and live on the main thread; the debug-exit and POST (0x80) ports are stateless enough to live
 * in every vCPU thread, so their exits never leave it. The debug-exit port lets the guest choose
 * the VMM's exit status, so it exists only when asked for (the built-in guest, --debug-exit).
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
import { loadKernel, type BootInfo } from './loader/index.js';
import type { LoadedAbi } from './kvm/abi.js';
import type { CapabilityMask } from './kvm/capabilities.js';
import { VmRun, type LocalDevice, type RunSummary } from './runner.js';
import { moduleUrl } from './vcpu/pool.js';
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
  /** The spec the VM runs on (default: the newest pinned one), as `kvm-cli run --abi` picks it. */
  abi?: LoadedAbi;
  /** Capabilities read as absent (`--kernel-caps-as`, `--without-cap`). */
  mask?: CapabilityMask;
}

export class Machine {
  readonly serial: Serial;
  private readonly bus: IoBus;
  private readonly localDevices: LocalDevice[];
  private run: VmRun | undefined;
  private readonly startedAt = performance.timeOrigin + performance.now();
  private readonly sink: ConsoleSink;
  /** Console input waiting for room in the UART's FIFO. */
  private readonly input: ConsoleInput;

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
    this.input = new ConsoleInput(this.serial);
    this.bus.registerPio(this.serial);
    this.bus.registerPio(new I8042(host));
    this.bus.registerPio(new Cmos(host, { memBytes: opts.memBytes }));
    this.localDevices = [
      { spec: { module: moduleUrl('devices/legacy/debug-port'), exportName: 'DebugPort', options: { enabled: opts.debugPort ?? false } }, ports: [[DEBUG_PORT, 1]] },
    ];
    if (opts.debugExit) {
      this.localDevices.push({ spec: { module: moduleUrl('devices/legacy/debug-exit'), exportName: 'DebugExit', options: { port: DEBUG_EXIT_PORT } }, ports: [[DEBUG_EXIT_PORT, 1]] });
    }
  }

  /** Creates the VM and loads the kernel; releases everything if either fails. */
  static create(opts: MachineOptions): Machine {
    const vm = Vm.create({ memBytes: opts.memBytes, cpus: opts.cpus, kvmPath: opts.kvmPath, abi: opts.abi, mask: opts.mask });
    try {
      const boot = loadKernel(vm.memory, {
        kernel: opts.kernel,
        initrd: opts.initrd,
        cmdline: opts.cmdline,
        cpus: opts.cpus,
        hostDecompress: opts.hostDecompress,
        deadline: opts.loadDeadline,
      });
      vm.setBootRegisters(boot);
      return new Machine(vm, boot, opts);
    } catch (err) {
      vm.close();
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

  /** Boots, runs to the end, and releases the VM. */
  async runToEnd(): Promise<RunSummary> {
    const run = this.start();
    try {
      return await run.done;
    } finally {
      this.close();
    }
  }

  /** Every main-thread device with what it counted so far (`kvm-cli stat`). */
  devices(): Array<{ name: string; bus: 'pio' | 'mmio'; counters: Record<string, number> }> {
    return this.bus.devices().map(({ bus, device }) => ({ name: device.name, bus, counters: device.counters?.() ?? {} }));
  }

    /**
   * Console input for the UART; what does not fit its FIFO waits until the guest drains it. False
   * when the bounded queue is full: pause the source until onConsoleRoom() calls back.
   */
  feedConsole(bytes: Uint8Array): boolean {
    return this.input.push(bytes);
  }

  /** Calls `listener` once, when console input has room again. */
  onConsoleRoom(listener: () => void): void {
    this.input.onRoom(listener);
  }

  close(): void {
    this.input.close();
    this.vm.close();
  }
}
