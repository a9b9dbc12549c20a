/**
 * A bootable machine: the VM, the kernel loaded by the loader, and the kvmtool-like legacy devices.
 * Device placement (docs/design-vmm.md): the UART, i8042 and CMOS have state shared by all vCPUs
 * and live on the main thread; the debug-exit and POST (0x80) ports are stateless enough to live
 * in every vCPU thread, so their exits never leave it.
 */
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
  timeoutMs?: number;
  /** Guest console output. */
  console: (bytes: Uint8Array) => void;
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
  /** Console input waiting for room in the UART's FIFO, oldest first. */
  private rxBacklog: Uint8Array[] = [];
  private rxTimer: NodeJS.Timeout | undefined;

  private constructor(
    readonly vm: Vm,
    readonly boot: BootInfo,
    private readonly opts: MachineOptions,
  ) {
    const host: DeviceHost = {
      setIrq: (gsi, level) => vm.setIrqLine(gsi, level),
      consoleWrite: (bytes) => opts.console(bytes),
      requestExit: (status, reason) => this.run?.requestExit(status, reason),
      log: opts.log,
      now: () => performance.timeOrigin + performance.now() - this.startedAt,
    };
    this.bus = new IoBus(opts.log);
    this.serial = new Serial(host);
    this.bus.registerPio(this.serial);
    this.bus.registerPio(new I8042(host));
    this.bus.registerPio(new Cmos(host, { memBytes: opts.memBytes }));
    this.localDevices = [
      { spec: { module: moduleUrl('devices/legacy/debug-exit'), exportName: 'DebugExit', options: { port: DEBUG_EXIT_PORT } }, ports: [[DEBUG_EXIT_PORT, 1]] },
      { spec: { module: moduleUrl('devices/legacy/debug-port'), exportName: 'DebugPort', options: { enabled: opts.debugPort ?? false } }, ports: [[DEBUG_PORT, 1]] },
    ];
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
      });
      vm.setBootRegisters(boot);
      return new Machine(vm, boot, opts);
    } catch (err) {
      vm.close();
      throw err;
    }
  }

  start(): VmRun {
    if (this.run) throw new Error('machine already started');
    this.run = VmRun.start(this.vm, {
      bus: this.bus,
      localDevices: this.localDevices,
      console: this.opts.console,
      log: this.opts.log,
      timeoutMs: this.opts.timeoutMs,
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

  /** Console input for the UART; what does not fit its FIFO waits until the guest drains it. */
  feedConsole(bytes: Uint8Array): void {
    if (bytes.length > 0) this.rxBacklog.push(bytes.slice());
    this.drainRx();
  }

  /** Moves what fits into the FIFO; chunks, not bytes, so a large piped input costs O(n), not O(n²). */
  private drainRx(): void {
    while (this.rxBacklog.length > 0) {
      const room = this.serial.rxSpace();
      if (room === 0) break;
      const head = this.rxBacklog[0];
      const n = this.serial.feed(head.subarray(0, room));
      if (n >= head.length) this.rxBacklog.shift();
      else this.rxBacklog[0] = head.subarray(n);
      if (n === 0) break;
    }
    if (this.rxBacklog.length > 0 && !this.rxTimer) {
      this.rxTimer = setTimeout(() => {
        this.rxTimer = undefined;
        this.drainRx();
      }, 2);
      this.rxTimer.unref();
    }
  }

  close(): void {
    if (this.rxTimer) clearTimeout(this.rxTimer);
    this.rxTimer = undefined;
    this.vm.close();
  }
}
