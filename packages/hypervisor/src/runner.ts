/**
 * Runs a configured Vm: one thread per vCPU, the main thread's devices on the bus, and the first
 * vCPU outcome (or device request, timeout, or stop) ending the whole VM.
 */
import { ConsoleSink } from './console/sink.js';
import { BusError, PORT_SPACE, type IoBus } from './devices/bus.js';
import type { DeviceHost } from './devices/device.js';
import type { UnclaimedTotals } from './devices/unclaimed.js';
import { hex } from './hex.js';
import * as ch from './vcpu/channel.js';
import { VcpuThread } from './vcpu/vcpu.js';
import type { Vm } from './vm.js';

/** A device every vCPU thread instantiates for itself, with the ports it claims there. */
export interface LocalDevice {
  spec: ch.LocalDeviceSpec;
  ports: ReadonlyArray<readonly [number, number]>;
}

export interface RunOptions {
  bus: IoBus;
  localDevices?: LocalDevice[];
  /** Guest console bytes, from any thread's devices (a function: taken at once, never back-pressured). */
  console?: ConsoleSink | ((bytes: Uint8Array) => void);
  log?: (line: string) => void;
  /** Ends the run with status 124 after this long. */
  timeoutMs?: number;
  /** The timeout's message (default "timed out after <timeoutMs> s"): a caller whose budget started earlier names its own. */
  timeoutMessage?: string;
  /** performance.timeOrigin + performance.now() that DeviceHost.now() counts from (default: now). */
  startedAt?: number;
}

export interface RunSummary {
  exitReason: string;
  status: number;
  message: string;
  kind: ch.VcpuOutcome['kind'] | 'timeout';
  rip?: string;
  wallMs: number;
  exits: { byReason: Record<string, number>; forwarded: number; total: number };
  /** Accesses no device claimed (docs/limits.md: at most 32 logged, all counted). */
  unclaimed: UnclaimedTotals;
  /** Epoch ms (performance.timeOrigin-based) of the first KVM_RUN of any vCPU. */
  firstKvmRunAt?: number;
  /**
   * How vCPUs were kicked out of KVM_RUN (pause, stop): with immediate_exit set first, or — without
   * KVM_CAP_IMMEDIATE_EXIT — by signals repeated until the thread answers; `kicks` signals in all.
   */
  kick: { path: 'immediate-exit' | 're-kick'; kicks: number };
}

export interface VcpuStats {
  index: number;
  state: number;
  tid: number;
  exits: RunSummary['exits'];
}

export const TIMEOUT_STATUS = 124;

type Outcome = Omit<RunSummary, 'wallMs' | 'exits' | 'unclaimed' | 'kick'>;

export class VmRun {
  readonly done: Promise<RunSummary>;
  readonly host: DeviceHost;
  private readonly threads: VcpuThread[] = [];
  private readonly startedAt: number;
  private decided: Outcome | undefined;
  private stopping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly vm: Vm,
    private readonly opts: RunOptions,
  ) {
    this.startedAt = opts.startedAt ?? performance.timeOrigin + performance.now();
    const log = opts.log ?? (() => {});
    const sink = opts.console instanceof ConsoleSink ? opts.console : new ConsoleSink(opts.console ?? (() => {}));
    this.host = {
      setIrq: (gsi, level) => vm.setIrqLine(gsi, level),
      consoleWrite: (bytes) => sink.write(bytes),
      consoleWritable: () => sink.writable,
      onConsoleWritable: (listener) => sink.onWritable(listener),
      requestExit: (status, reason) => this.requestExit(status, reason),
      log,
      now: () => performance.timeOrigin + performance.now() - this.startedAt,
    };
    const portMap = this.portMap();
    const specs = (opts.localDevices ?? []).map((d) => d.spec);
    const events = {
      log,
      console: (bytes: Uint8Array) => sink.write(bytes),
      unclaimed: (where: string, kind: 'read' | 'write', size: number) => opts.bus.reportUnclaimed(where, kind, size),
      deviceError: (err: unknown) =>
        this.end({ kind: 'error', exitReason: 'device', status: 1, message: `device failed: ${err instanceof Error ? err.message : String(err)}` }),
    };
    // Vm.close() stops and joins these threads before it releases what they use.
    vm.onClose(() => this.threads.map((t) => t.stopAndJoin()).every(Boolean));
    try {
      for (let i = 0; i < vm.cpus; i++) this.threads.push(new VcpuThread(vm, i, opts.bus, portMap, specs, this.startedAt, events));
    } catch (err) {
      // The threads already started would otherwise run (and keep the process alive) with nobody to stop them.
      for (const t of this.threads) void t.terminate();
      throw err;
    }
    if (opts.timeoutMs !== undefined) {
      this.timer = setTimeout(
        () => this.timeout(opts.timeoutMessage ?? `timed out after ${opts.timeoutMs! / 1000} s`),
        opts.timeoutMs,
      );
    }
    this.done = this.collect();
  }

  static start(vm: Vm, opts: RunOptions): VmRun {
    return new VmRun(vm, opts);
  }

  /** Which ports each vCPU thread forwards to the main thread, handles itself, or answers as unclaimed. */
  private portMap(): Uint8Array {
    const map = new Uint8Array(PORT_SPACE);
    for (const [base, length] of this.opts.bus.claimedPorts()) map.fill(ch.PORT_FORWARD, base, base + length);
    (this.opts.localDevices ?? []).forEach((d, i) => {
      if (ch.PORT_LOCAL_BASE + i > 255) throw new BusError('too many per-vCPU devices');
      for (const [base, length] of d.ports) {
        if (base < 0 || length <= 0 || base + length > PORT_SPACE) throw new BusError(`${d.spec.exportName}: port range ${hex(base, 4)}+${length} is outside the port space`);
        for (let p = base; p < base + length; p++) {
          if (map[p] !== ch.PORT_UNCLAIMED) throw new BusError(`${d.spec.exportName}: port ${hex(p, 4)} is already claimed`);
          map[p] = ch.PORT_LOCAL_BASE + i;
        }
      }
    });
    return map;
  }

  /** A device's request to end the VM with `status`. */
  requestExit(status: number, reason: string): void {
    this.end({ kind: 'guest-exit', exitReason: reason, status, message: reason });
  }

  /** Ends the run with status 1: something outside the guest failed (e.g. the console's stream). */
  fail(message: string): void {
    this.end({ kind: 'error', exitReason: 'vmm', status: 1, message });
  }

  /** Ends the run as a timeout (status 124). */
  timeout(message: string): void {
    this.end({ kind: 'timeout', exitReason: 'timeout', status: TIMEOUT_STATUS, message });
  }

  /** Records why the VM ends (first reason wins) and stops every vCPU. */
  private end(outcome: Outcome): void {
    this.decided ??= outcome;
    void this.stopAll();
  }

  private stopAll(): Promise<void> {
    this.stopping ??= Promise.all(this.threads.map((t) => t.stop())).then(() => undefined);
    return this.stopping;
  }

  private async collect(): Promise<RunSummary> {
    // Whichever vCPU ends first with a reason ends them all.
    await Promise.all(this.threads.map(async (t) => this.end(await t.ended)));
    if (this.timer) clearTimeout(this.timer);
    const wallMs = performance.timeOrigin + performance.now() - this.startedAt;
    const starts = this.threads.map((t) => t.firstRunAt).filter((x): x is number => x !== undefined);
    const threadUnclaimed = this.threads.reduce((n, t) => n + t.stats[ch.STATS_UNCLAIMED], 0);
    return {
      ...this.decided!,
      wallMs,
      exits: this.exits(),
      unclaimed: this.opts.bus.unclaimedTotals(threadUnclaimed),
      firstKvmRunAt: starts.length ? Math.min(...starts) : undefined,
      kick: { path: this.vm.caps.immediateExit ? 'immediate-exit' : 're-kick', kicks: this.threads.reduce((n, t) => n + t.kicks, 0) },
    };
  }

  /** Exits by KVM_EXIT_* name over `threads`' counters (shared memory, so also while they run). */
  private countExits(threads: VcpuThread[]): RunSummary['exits'] {
    const byReason: Record<string, number> = {};
    let forwarded = 0;
    let total = 0;
    for (const t of threads) {
      forwarded += t.stats[ch.STATS_FORWARDED];
      for (let r = 0; r <= ch.STATS_LAST_REASON; r++) {
        const n = t.stats[r];
        if (n === 0) continue;
        const name = this.vm.layout.exitNames[r] ?? `EXIT_${r}`;
        byReason[name] = (byReason[name] ?? 0) + n;
        total += n;
      }
    }
    return { byReason, forwarded, total };
  }

  /** Exits so far, over all vCPUs. */
  exits(): RunSummary['exits'] {
    return this.countExits(this.threads);
  }

  /** Each vCPU thread's state (channel.ts STATE_*), kernel thread id (0 before it started) and exits so far. */
  vcpus(): VcpuStats[] {
    return this.threads.map((t) => ({ index: t.index, state: t.state, tid: t.tid, exits: this.countExits([t]) }));
  }

  /** True once the run is ending (a stop, a guest exit, an error or the timeout was decided). */
  get ending(): boolean {
    return this.decided !== undefined;
  }

  /** Every vCPU outside KVM_RUN and parked; resolves once all are. */
  async pause(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.pause()));
  }

  async resume(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.resume()));
  }

  /** Ends the run from outside (status 0 unless a reason was already recorded). */
  async stop(reason = 'stopped'): Promise<RunSummary> {
    this.end({ kind: 'stopped', exitReason: 'stopped', status: 0, message: reason });
    return this.done;
  }

  /** The vCPU threads' states (for tests and diagnostics). */
  states(): number[] {
    return this.threads.map((t) => t.state);
  }
}
