/**
 * One vCPU's thread: KVM_RUN in a loop, each exit decoded at the spec's kvm_run offsets and handled
 * here when it can be (ports of devices that live in every vCPU thread, unclaimed ports), otherwise
 * handed to the main thread's devices through the mailbox (see docs/design-vmm.md).
 */
import { constants as osConstants } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { DeviceHost, PioDevice } from '../devices/device.js';
import { hex, portName } from '../hex.js';
import { errnoName, native } from '../kvm/native.js';
import * as ch from './channel.js';
import type { VcpuWorkerData } from './pool.js';

// Load the addon first: a prestarted thread does this while the main thread is still setting up the VM.
const shim = native();
// Warm the module cache with this package's per-thread devices while waiting (see pool.ts).
for (const m of (workerData as VcpuWorkerData | undefined)?.preload ?? []) import(m).catch(() => {});
const init = await new Promise<ch.VcpuWorkerInit>((resolve) => parentPort!.once('message', resolve));
const L = init.layout;
const O = L.offsets;
const X = L.exits;
const EINTR = osConstants.errno.EINTR;
const EAGAIN = osConstants.errno.EAGAIN;

const control = new Int32Array(init.control);
const mailbox = new Int32Array(init.mailbox, 0, ch.MB_HEADER_BYTES / 4);
const mailboxData = new Uint8Array(init.mailbox, ch.MB_HEADER_BYTES, ch.MB_DATA_BYTES);
const stats = new Float64Array(init.stats);
const portMap = init.portMap;

const post = (m: ch.VcpuMessage) => parentPort!.postMessage(m);

let ending: ch.VcpuOutcome | undefined;
const reportedUnclaimed = new Set<number>();

function now(): number {
  return performance.timeOrigin + performance.now() - init.startedAt;
}

const irqBuf = new Uint8Array(L.sizes.irqLevel);
const irqView = new DataView(irqBuf.buffer);
const host: DeviceHost = {
  setIrq(gsi, level) {
    irqView.setUint32(O.irqLevelIrq, gsi, true);
    irqView.setUint32(O.irqLevelLevel, level ? 1 : 0, true);
    const r = shim.ioctlRaw(init.vmFd, L.requests.irqLine, irqBuf);
    if (r < 0) post({ type: 'irq-error', message: `KVM_IRQ_LINE(${gsi}) failed with errno ${-r}` });
  },
  consoleWrite(bytes) {
    post({ type: 'console', bytes: bytes.slice() });
  },
  // Per-thread devices are not console devices; their rare bytes go through the main thread's sink.
  consoleWritable: () => true,
  onConsoleWritable: (listener) => listener(),
  requestExit(status, reason) {
    ending ??= { kind: 'guest-exit', exitReason: reason, status, message: reason };
  },
  log(line) {
    post({ type: 'log', line });
  },
  now,
};

async function loadLocalDevices(): Promise<PioDevice[]> {
  const out: PioDevice[] = [];
  for (const spec of init.localDevices) {
    const mod = (await import(spec.module)) as Record<string, new (host: DeviceHost, options?: unknown) => PioDevice>;
    const Ctor = mod[spec.exportName];
    if (typeof Ctor !== 'function') throw new Error(`${spec.module} has no export ${spec.exportName}`);
    out.push(new Ctor(host, spec.options));
  }
  return out;
}

function rip(): string | undefined {
  const regs = new Uint8Array(L.sizes.regs);
  if (shim.ioctlRaw(init.vcpuFd, L.requests.getRegs, regs) < 0) return undefined;
  return hex(new DataView(regs.buffer).getBigUint64(O.regsRip, true));
}

function exitName(reason: number): string {
  return L.exitNames[reason] ?? `exit reason ${reason}`;
}

/** `reason`: the exit that ended the run, or the name of what failed when there was no exit. */
function fatal(reason: number | string, what: string): ch.VcpuOutcome {
  const at = rip();
  return {
    kind: 'error',
    exitReason: typeof reason === 'string' ? reason : exitName(reason),
    status: 1,
    rip: at,
    message: `vCPU ${init.index}: ${what}${at ? ` at RIP ${at}` : ''}`,
  };
}

/** Hands one access to the main thread and waits for it; false if the VMM stopped meanwhile. */
function forward(kind: number, write: boolean, size: number, count: number, addrLo: number, addrHi: number): boolean {
  mailbox[ch.MB_KIND] = kind;
  mailbox[ch.MB_WRITE] = write ? 1 : 0;
  mailbox[ch.MB_SIZE] = size;
  mailbox[ch.MB_COUNT] = count;
  mailbox[ch.MB_ADDR_LO] = addrLo;
  mailbox[ch.MB_ADDR_HI] = addrHi;
  stats[ch.STATS_FORWARDED]++;
  Atomics.store(mailbox, ch.MB_STATUS, ch.MB_REQUEST);
  Atomics.notify(mailbox, ch.MB_STATUS);
  while (Atomics.load(mailbox, ch.MB_STATUS) === ch.MB_REQUEST) {
    Atomics.wait(mailbox, ch.MB_STATUS, ch.MB_REQUEST, 100);
    if (Atomics.load(control, ch.CTL_COMMAND) === ch.CMD_STOP && Atomics.load(mailbox, ch.MB_STATUS) === ch.MB_REQUEST) {
      return false;
    }
  }
  Atomics.store(mailbox, ch.MB_STATUS, ch.MB_IDLE);
  return true;
}

function readData(view: DataView, at: number, size: number): number {
  return size === 1 ? view.getUint8(at) : size === 2 ? view.getUint16(at, true) : view.getUint32(at, true);
}

function writeData(view: DataView, at: number, size: number, value: number): void {
  if (size === 1) view.setUint8(at, value);
  else if (size === 2) view.setUint16(at, value, true);
  else view.setUint32(at, value >>> 0, true);
}

function unclaimed(port: number, write: boolean, size: number): void {
  stats[ch.STATS_UNCLAIMED]++;
  if (reportedUnclaimed.has(port) || reportedUnclaimed.size >= ch.THREAD_UNCLAIMED_REPORTS) return;
  reportedUnclaimed.add(port);
  post({ type: 'unclaimed', where: portName(port), kind: write ? 'write' : 'read', size });
}

function main(local: PioDevice[]): void {
  const tid = shim.prepareKick();
  const run = shim.mmapShared(init.vcpuFd, init.runSize);
  const bytes = new Uint8Array(run);
  const view = new DataView(run);
  Atomics.store(control, ch.CTL_TID, tid);
  Atomics.store(control, ch.CTL_STATE, ch.STATE_RUNNING);
  Atomics.notify(control, ch.CTL_STATE);
  post({ type: 'ready', tid, at: performance.timeOrigin + performance.now() });

  try {
    loop(bytes, view, local);
  } catch (err) {
    // A per-thread device threw: the VM ends, as when a main-thread device throws.
    ending ??= { kind: 'error', exitReason: 'device', status: 1, message: `vCPU ${init.index}: device failed: ${errorMessage(err)}` };
  } finally {
    shim.munmap(run);
  }
  Atomics.store(control, ch.CTL_STATE, ch.STATE_EXITED);
  Atomics.notify(control, ch.CTL_STATE);
  const outcome: ch.VcpuOutcome = ending ?? { kind: 'stopped', exitReason: 'stopped', status: 0, message: `vCPU ${init.index} stopped` };
  post({ type: 'end', outcome });
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** KVM_RUN until an exit ends the VM (sets `ending`) or the main thread says stop. */
function loop(bytes: Uint8Array, view: DataView, local: PioDevice[]): void {
  const vcpuFd = init.vcpuFd;
  const runRequest = L.requests.run;

  while (ending === undefined) {
    const r = shim.ioctlRaw(vcpuFd, runRequest, 0);
    if (r < 0) {
      if (r !== -EINTR && r !== -EAGAIN) {
        ending = fatal('KVM_RUN', `KVM_RUN failed with ${errnoName(-r)}`);
        break;
      }
      // Clear before reading the command: a request made after this read sets it again. The read
      // is a locked read-modify-write, a full fence, so the clear cannot be reordered after it (a
      // plain load could pass the store; the 2 ms re-kick would then be the only thing left).
      bytes[O.immediateExit] = 0;
      const cmd = Atomics.add(control, ch.CTL_COMMAND, 0);
      if (cmd === ch.CMD_STOP) break;
      if (cmd === ch.CMD_PAUSE) park();
      continue;
    }
    const reason = view.getUint32(O.exitReason, true);
    stats[Math.min(reason, ch.STATS_LAST_REASON)]++;
    if (reason === X.io) {
      const size = bytes[O.ioSize];
      const port = view.getUint16(O.ioPort, true);
      const count = view.getUint32(O.ioCount, true);
      const at = view.getUint32(O.ioDataOffset, true);
      const write = bytes[O.ioDirection] !== L.ioIn;
      if ((size !== 1 && size !== 2 && size !== 4) || view.getUint32(O.ioDataOffset + 4, true) !== 0 || at + size * count > init.runSize) {
        ending = fatal(reason, `malformed KVM_EXIT_IO (port ${hex(port)}, size ${size}, count ${count}, data offset ${hex(at)})`);
        break;
      }
      const where = portMap[port];
      if (where >= ch.PORT_LOCAL_BASE) {
        const dev = local[where - ch.PORT_LOCAL_BASE];
        for (let i = 0, p = at; i < count; i++, p += size) {
          if (write) dev.write(port, size, readData(view, p, size));
          else writeData(view, p, size, dev.read(port, size));
        }
      } else if (where === ch.PORT_FORWARD) {
        const n = size * count;
        if (n > ch.MB_DATA_BYTES) {
          ending = fatal(reason, `string I/O of ${n} bytes at port ${hex(port)} exceeds the mailbox`);
          break;
        }
        if (write) mailboxData.set(bytes.subarray(at, at + n));
        if (!forward(ch.KIND_PIO, write, size, count, port, 0)) break;
        if (!write) bytes.set(mailboxData.subarray(0, n), at);
      } else {
        unclaimed(port, write, size);
        if (!write) bytes.fill(0xff, at, at + size * count);
      }
    } else if (reason === X.mmio) {
      const len = view.getUint32(O.mmioLen, true);
      const write = bytes[O.mmioIsWrite] !== 0;
      if (len === 0 || len > 8) {
        ending = fatal(reason, `malformed KVM_EXIT_MMIO (length ${len})`);
        break;
      }
      if (write) mailboxData.set(bytes.subarray(O.mmioData, O.mmioData + len));
      const lo = view.getUint32(O.mmioPhysAddr, true);
      const hi = view.getUint32(O.mmioPhysAddr + 4, true);
      if (!forward(ch.KIND_MMIO, write, len, 1, lo | 0, hi | 0)) break;
      if (!write) bytes.set(mailboxData.subarray(0, len), O.mmioData);
    } else {
      ending = endingFor(reason, view);
    }
    // A string instruction with a huge count goes from exit to exit without KVM_RUN ever returning
    // EINTR (KVM completes the pending I/O before it looks at immediate_exit): look here too.
    const cmd = Atomics.load(control, ch.CTL_COMMAND);
    if (cmd === ch.CMD_STOP) break;
    if (cmd === ch.CMD_PAUSE) park();
  }
}

/** Outside KVM_RUN until the main thread says run or stop. */
function park(): void {
  Atomics.store(control, ch.CTL_STATE, ch.STATE_PAUSED);
  Atomics.notify(control, ch.CTL_STATE);
  while (Atomics.load(control, ch.CTL_COMMAND) === ch.CMD_PAUSE) Atomics.wait(control, ch.CTL_COMMAND, ch.CMD_PAUSE);
  Atomics.store(control, ch.CTL_STATE, ch.STATE_RUNNING);
  Atomics.notify(control, ch.CTL_STATE);
}

/** Every exit other than I/O ends the run (with the in-kernel irqchip, HLT is handled by KVM). */
function endingFor(reason: number, view: DataView): ch.VcpuOutcome {
  if (reason === X.systemEvent) {
    const type = view.getUint32(O.systemEventType, true);
    const ev = L.systemEvents;
    if (type === ev.shutdown) return { kind: 'guest-exit', exitReason: exitName(reason), status: 0, message: `vCPU ${init.index}: guest powered off` };
    if (type === ev.reset) return { kind: 'guest-exit', exitReason: exitName(reason), status: 0, message: `vCPU ${init.index}: guest requested a reset (kvm-ts does not reboot)` };
    return fatal(reason, type === ev.crash ? 'guest reported a crash (KVM_SYSTEM_EVENT_CRASH)' : `unknown system event type ${type}`);
  }
  if (reason === X.shutdown) return fatal(reason, 'guest shut down (KVM_EXIT_SHUTDOWN: triple fault)');
  if (reason === X.failEntry) {
    const hw = view.getBigUint64(O.failEntryReason, true);
    const cpu = view.getUint32(O.failEntryCpu, true);
    return fatal(reason, `KVM_EXIT_FAIL_ENTRY: hardware entry failure reason ${hex(hw)} on host cpu ${cpu}`);
  }
  if (reason === X.internalError) {
    const sub = view.getUint32(O.internalSuberror, true);
    const n = Math.min(view.getUint32(O.internalNdata, true), L.sizes.internalData);
    const data = Array.from({ length: n }, (_, i) => hex(view.getBigUint64(O.internalData + 8 * i, true)));
    const name = L.internalErrorNames[sub] ?? `suberror ${sub}`;
    return fatal(reason, `KVM_EXIT_INTERNAL_ERROR: ${name}${data.length ? ` [${data.join(' ')}]` : ''}`);
  }
  if (reason === X.hlt) return fatal(reason, 'guest halted (KVM_EXIT_HLT) with no interrupt to wake it');
  return fatal(reason, `unexpected ${exitName(reason)}`);
}

function failSetup(err: unknown): void {
  Atomics.store(control, ch.CTL_STATE, ch.STATE_EXITED);
  Atomics.notify(control, ch.CTL_STATE);
  post({ type: 'end', outcome: { kind: 'error', exitReason: 'setup', status: 1, message: `vCPU ${init.index}: ${errorMessage(err)}` } });
}

loadLocalDevices().then((local) => {
  try {
    main(local);
  } catch (err) {
    failSetup(err);
  }
}, failSetup);
