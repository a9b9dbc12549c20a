/**
 * The control socket's methods for a running Machine: info, pause/resume (every vCPU parked outside
 * KVM_RUN), stop, stat (exits, vCPUs, devices, memory), debug (registers read while paused) and the
 * console. State changes run one at a time, so a `debug` never resumes a VM someone paused.
 * Exported from `@kvm-ts/hypervisor` (not `/control`, which stays free of the VMM).
 */
import { dumpVcpu } from '../arch/x86/debug-dump.js';
import { hex } from '../hex.js';
import type { Machine } from '../machine.js';
import type { RunSummary, VmRun } from '../runner.js';
import * as ch from '../vcpu/channel.js';
import type { ConsoleHub } from './console-hub.js';
import { ControlError, type Params, type Result, type VcpuStatus, type VmState } from './protocol.js';
import type { ConsoleSink, ControlTarget } from './server.js';

export interface MachineControlOptions {
  name: string;
  socket: string;
  machine: Machine;
  run: VmRun;
  console: ConsoleHub;
  /** The console log file of a detached run. */
  log?: string;
  /** Epoch ms the VM started at (default: now). */
  startedAt?: number;
  /** The reason a `stop` gives the run (its summary's message). */
  stopMessage?: string;
}

const VCPU_STATES: Record<number, VcpuStatus['state']> = {
  [ch.STATE_STARTING]: 'starting',
  [ch.STATE_RUNNING]: 'running',
  [ch.STATE_PAUSED]: 'paused',
  [ch.STATE_EXITED]: 'exited',
};

export class MachineControl implements ControlTarget {
  private paused = false;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly startedAt: number;
  private ended: RunSummary | undefined;

  constructor(private readonly opts: MachineControlOptions) {
    this.startedAt = opts.startedAt ?? Date.now();
    void opts.run.done.then((s) => (this.ended = s));
  }

  /** One state change at a time, in arrival order. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private live(): void {
    if (this.ended || this.opts.run.ending) throw new ControlError('not-running', 'the VM is ending');
  }

  state(): VmState {
    if (this.ended || this.opts.run.ending) return 'stopping';
    if (this.paused) return 'paused';
    return this.opts.run.vcpus().some((v) => v.state === ch.STATE_STARTING) ? 'starting' : 'running';
  }

  info(): Result<'info'> {
    const { machine, name, socket, log } = this.opts;
    return {
      name,
      pid: process.pid,
      state: this.state(),
      cpus: machine.vm.cpus,
      memoryBytes: machine.vm.memory.size,
      startedAt: this.startedAt,
      uptimeMs: Math.max(0, Date.now() - this.startedAt),
      socket,
      abi: machine.vm.abi.version,
      console: { attachable: this.opts.console.attachable, ...(log ? { log } : {}) },
    };
  }

  pause(): Promise<Result<'pause'>> {
    return this.serialized(async () => {
      this.live();
      if (this.paused) return { state: 'paused' as const, changed: false };
      await this.opts.run.pause();
      this.live();
      this.paused = true;
      return { state: 'paused' as const, changed: true };
    });
  }

  resume(): Promise<Result<'resume'>> {
    return this.serialized(async () => {
      this.live();
      if (!this.paused) return { state: this.state(), changed: false };
      await this.opts.run.resume();
      this.paused = false;
      return { state: this.state(), changed: true };
    });
  }

  /** Not serialized: a stop wins over any pause, resume or debug in progress. */
  async stop(): Promise<Result<'stop'>> {
    const summary = await this.opts.run.stop(this.opts.stopMessage ?? 'stopped through the control socket');
    return { state: 'stopped', exitReason: summary.exitReason, status: summary.status };
  }

  stat(): Result<'stat'> {
    const { machine, run, name } = this.opts;
    return {
      name,
      state: this.state(),
      uptimeMs: Math.max(0, Date.now() - this.startedAt),
      memory: {
        guestBytes: machine.vm.memory.size,
        regions: machine.vm.memory.regions.map((r) => ({ gpa: hex(r.gpa), bytes: r.size })),
        vmmRssBytes: process.memoryUsage.rss(),
      },
      exits: run.exits(),
      vcpus: run.vcpus().map((v) => ({ index: v.index, state: VCPU_STATES[v.state] ?? 'exited', tid: v.tid, exits: v.exits })),
      devices: machine.devices(),
    };
  }

  /** Pauses the VM unless it already is, reads the registers, and resumes it if it paused it. */
  debug(params: Params<'debug'>): Promise<Result<'debug'>> {
    return this.serialized(async () => {
      this.live();
      const { machine, run } = this.opts;
      const cpus = machine.vm.cpus;
      if (params.vcpu !== undefined && params.vcpu >= cpus) {
        throw new ControlError('invalid-params', `params.vcpu: the VM has ${cpus} vCPU${cpus === 1 ? '' : 's'} (0–${cpus - 1})`);
      }
      const wasPaused = this.paused;
      if (!wasPaused) await run.pause();
      try {
        this.live();
        const states = run.vcpus().map((v) => v.state);
        if (states.some((s) => s !== ch.STATE_PAUSED)) throw new ControlError('not-running', 'a vCPU is not paused (the VM is ending)');
        const indices = params.vcpu !== undefined ? [params.vcpu] : [...Array(cpus).keys()];
        return { vcpus: indices.map((i) => dumpVcpu(machine.vm, i)) };
      } finally {
        if (!wasPaused && !run.ending) await run.resume();
      }
    });
  }

  attachConsole(sink: ConsoleSink, withBacklog: boolean) {
    this.live();
    return this.opts.console.attach(sink, withBacklog);
  }
}
