/**
 * The main thread's side of one vCPU thread: starts the worker, answers its mailbox with the
 * main thread's devices (Atomics.waitAsync, so the event loop stays free), and asks it to pause,
 * resume or stop by setting kvm_run.immediate_exit and kicking its thread out of KVM_RUN.
 */
import type { Worker } from 'node:worker_threads';
import type { IoBus } from '../devices/bus.js';
import { native, type Shim } from '../kvm/native.js';
import * as ch from './channel.js';
import { spawnWorker, takePrestarted } from './pool.js';
import type { Vm } from '../vm.js';

/** Atomics.waitAsync (Node 16+, V8), which the ES2023 lib this repo compiles against does not declare. */
type WaitAsyncResult = { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, timeoutMs?: number): WaitAsyncResult }).waitAsync.bind(Atomics);

/** How often a pending pause/stop re-kicks: covers a kick that landed just before KVM_RUN when immediate_exit is unavailable. */
const REKICK_MS = 2;

/**
 * vCPUs whose threads may be inside KVM_RUN. process.exit() (the caller's, or a signal handler's
 * such as tsx's) joins every worker thread, and a join on a thread blocked in KVM_RUN never
 * returns: the process would spin with the guest forever. So the exit first stops them all.
 */
const live = new Set<VcpuThread>();
let exitHookInstalled = false;
function stopLiveVcpus(): void {
  for (const v of live) v.stopAndJoin();
}

/** How long Vm.close() waits for a thread to leave KVM_RUN before it gives up on releasing the VM. */
const JOIN_MS = 5000;

export interface VcpuEvents {
  log(line: string): void;
  console(bytes: Uint8Array): void;
  unclaimed(where: string, kind: 'read' | 'write', size: number): void;
  /** A main-thread device threw while handling this vCPU's access. */
  deviceError(err: unknown): void;
}

export class VcpuThread {
  readonly ended: Promise<ch.VcpuOutcome>;
  private readonly shim: Shim = native();
  private readonly control: Int32Array;
  private readonly mailbox: Int32Array;
  private readonly mailboxData: Uint8Array;
  readonly stats: Float64Array;
  private readonly worker: Worker;
  /** The main thread's own mapping of the kvm_run page, only to set immediate_exit. */
  private run: ArrayBuffer | undefined;
  private finished = false;
  /** Signals sent to the thread (first kicks and re-kicks): which kick path a run exercised. */
  kicks = 0;
  /** Epoch ms at which the thread was about to enter KVM_RUN for the first time. */
  firstRunAt: number | undefined;

  constructor(
    private readonly vm: Vm,
    readonly index: number,
    private readonly bus: IoBus,
    portMap: Uint8Array,
    localDevices: ch.LocalDeviceSpec[],
    startedAt: number,
    private readonly events: VcpuEvents,
  ) {
    const control = new SharedArrayBuffer(ch.CTL_WORDS * 4);
    const mailbox = new SharedArrayBuffer(ch.MB_BYTES);
    const stats = new SharedArrayBuffer(ch.STATS_SLOTS * 8);
    this.control = new Int32Array(control);
    this.mailbox = new Int32Array(mailbox, 0, ch.MB_HEADER_BYTES / 4);
    this.mailboxData = new Uint8Array(mailbox, ch.MB_HEADER_BYTES, ch.MB_DATA_BYTES);
    this.stats = new Float64Array(stats);
    this.run = this.shim.mmapShared(vm.vcpuFds[index], vm.runSize);
    const init: ch.VcpuWorkerInit = {
      index,
      vcpuFd: vm.vcpuFds[index],
      vmFd: vm.fd,
      runSize: vm.runSize,
      layout: vm.layout,
      control,
      mailbox,
      stats,
      portMap,
      localDevices,
      startedAt,
    };
    try {
      this.worker = takePrestarted() ?? spawnWorker();
    } catch (err) {
      this.shim.munmap(this.run);
      throw err;
    }
    this.worker.postMessage(init);
    live.add(this);
    if (!exitHookInstalled) {
      process.on('exit', stopLiveVcpus);
      exitHookInstalled = true;
    }
    this.ended = new Promise<ch.VcpuOutcome>((resolve) => {
      let outcome: ch.VcpuOutcome | undefined;
      this.worker.on('message', (m: ch.VcpuMessage) => {
        if (m.type === 'end') outcome = m.outcome;
        else if (m.type === 'ready') this.firstRunAt = m.at;
        else if (m.type === 'log') events.log(m.line);
        else if (m.type === 'console') events.console(m.bytes);
        else if (m.type === 'unclaimed') events.unclaimed(m.where, m.kind, m.size);
        else if (m.type === 'irq-error') events.log(m.message);
      });
      this.worker.on('error', (err) => {
        outcome ??= { kind: 'error', exitReason: 'worker', status: 1, message: `vCPU ${index} thread failed: ${err.message}` };
      });
      this.worker.on('exit', () => {
        this.finish();
        resolve(outcome ?? { kind: 'error', exitReason: 'worker', status: 1, message: `vCPU ${index} thread ended without a result` });
      });
    });
    void this.serve();
  }

  get state(): number {
    return Atomics.load(this.control, ch.CTL_STATE);
  }

  /** The thread's kernel thread id, 0 until it is about to enter KVM_RUN. */
  get tid(): number {
    return Atomics.load(this.control, ch.CTL_TID);
  }

  /**
   * Knocks the vCPU out of KVM_RUN (or, with KVM_CAP_IMMEDIATE_EXIT, keeps it from entering) so it
   * reads its command. Without the capability the byte is padding to the kernel: only the signal
   * and knockUntil's re-kicks get the thread out.
   */
  private knock(): void {
    if (!this.run || this.finished) return;
    if (this.vm.caps.immediateExit) new Uint8Array(this.run)[this.vm.layout.offsets.immediateExit] = 1;
    const tid = this.tid;
    if (tid > 0) {
      this.shim.kick(tid);
      this.kicks++;
    }
  }

  /**
   * Knocks until the thread reports one of `states`, or until another call replaced the command
   * (a resume while a pause is pending). A pending stop is never replaced: pause and resume only
   * swap RUN and PAUSE, so a stop cannot be undone by a late resume.
   */
  private async knockUntil(cmd: number, states: number[]): Promise<void> {
    while (!this.finished && Atomics.load(this.control, ch.CTL_COMMAND) === cmd && !states.includes(this.state)) {
      this.knock();
      const w = waitAsync(this.control, ch.CTL_STATE, this.state, REKICK_MS);
      if (w.async) await w.value;
    }
  }

  async pause(): Promise<void> {
    const was = Atomics.compareExchange(this.control, ch.CTL_COMMAND, ch.CMD_RUN, ch.CMD_PAUSE);
    if (was === ch.CMD_STOP) return;
    await this.knockUntil(ch.CMD_PAUSE, [ch.STATE_PAUSED, ch.STATE_EXITED]);
  }

  async resume(): Promise<void> {
    if (Atomics.compareExchange(this.control, ch.CTL_COMMAND, ch.CMD_PAUSE, ch.CMD_RUN) !== ch.CMD_PAUSE) return;
    Atomics.notify(this.control, ch.CTL_COMMAND);
    while (!this.finished && Atomics.load(this.control, ch.CTL_COMMAND) === ch.CMD_RUN && this.state === ch.STATE_PAUSED) {
      const w = waitAsync(this.control, ch.CTL_STATE, ch.STATE_PAUSED, 50);
      if (w.async) await w.value;
    }
  }

  async stop(): Promise<ch.VcpuOutcome> {
    Atomics.store(this.control, ch.CTL_COMMAND, ch.CMD_STOP);
    Atomics.notify(this.control, ch.CTL_COMMAND);
    await this.knockUntil(ch.CMD_STOP, [ch.STATE_EXITED]);
    return this.ended;
  }

  /** Answers the worker's forwarded accesses until it ends. */
  private async serve(): Promise<void> {
    const mb = this.mailbox;
    while (!this.finished) {
      const status = Atomics.load(mb, ch.MB_STATUS);
      if (status !== ch.MB_REQUEST) {
        const w = waitAsync(mb, ch.MB_STATUS, status);
        if (w.async) await w.value;
        continue;
      }
      try {
        this.handle();
      } catch (err) {
        this.events.deviceError(err);
      }
      Atomics.store(mb, ch.MB_STATUS, ch.MB_DONE);
      Atomics.notify(mb, ch.MB_STATUS);
    }
  }

  private handle(): void {
    const mb = this.mailbox;
    const write = mb[ch.MB_WRITE] !== 0;
    const size = mb[ch.MB_SIZE];
    const data = this.mailboxData;
    if (mb[ch.MB_KIND] === ch.KIND_MMIO) {
      const addr = (BigInt(mb[ch.MB_ADDR_HI] >>> 0) << 32n) | BigInt(mb[ch.MB_ADDR_LO] >>> 0);
      const bytes = data.subarray(0, size);
      if (write) this.bus.mmioWrite(addr, bytes);
      else this.bus.mmioRead(addr, bytes);
      return;
    }
    const port = mb[ch.MB_ADDR_LO];
    const count = mb[ch.MB_COUNT];
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0, at = 0; i < count; i++, at += size) {
      if (write) {
        const v = size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at, true) : view.getUint32(at, true);
        this.bus.pioWrite(port, size, v);
      } else {
        const v = this.bus.pioRead(port, size);
        if (size === 1) view.setUint8(at, v & 0xff);
        else if (size === 2) view.setUint16(at, v & 0xffff, true);
        else view.setUint32(at, v >>> 0, true);
      }
    }
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    live.delete(this);
    // Wake serve() so it sees the end.
    Atomics.notify(this.mailbox, ch.MB_STATUS);
    if (this.run) {
      this.shim.munmap(this.run);
      this.run = undefined;
    }
  }

  /**
   * Stops the thread and blocks until it is out of KVM_RUN for good (for Vm.close(), which must
   * not release fds or RAM a running vCPU still uses). The thread needs nothing from this one to
   * stop: a forwarded access it waits on is abandoned when it sees the stop. False if it did not
   * stop within JOIN_MS.
   */
  stopAndJoin(): boolean {
    if (this.finished) return true;
    Atomics.store(this.control, ch.CTL_COMMAND, ch.CMD_STOP);
    Atomics.notify(this.control, ch.CTL_COMMAND);
    const until = performance.now() + JOIN_MS;
    let state = this.state;
    while (state !== ch.STATE_EXITED && performance.now() < until) {
      this.knock();
      Atomics.wait(this.control, ch.CTL_STATE, state, REKICK_MS);
      state = this.state;
    }
    if (state !== ch.STATE_EXITED) return false;
    this.finish();
    return true;
  }

  /** Ends the thread however it is (for error paths); the vCPU fd itself belongs to the Vm. */
  async terminate(): Promise<void> {
    if (this.finished) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.stop(), new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
    if (!this.finished) await this.worker.terminate();
  }
}
