/**
 * The shared memory between the main thread and one vCPU thread: a control block (commands and
 * acknowledgements, waited on with Atomics), a one-slot mailbox for I/O the main thread's devices
 * must handle, and exit counters. Plain numbers only: both sides import this file.
 */

/** Control block (Int32Array) slots. */
export const CTL_COMMAND = 0;
export const CTL_STATE = 1;
export const CTL_TID = 2;
export const CTL_WORDS = 4;

export const CMD_RUN = 0;
export const CMD_PAUSE = 1;
export const CMD_STOP = 2;

export const STATE_STARTING = 0;
export const STATE_RUNNING = 1;
export const STATE_PAUSED = 2;
export const STATE_EXITED = 3;

/** Mailbox (Int32Array header, then data bytes). */
export const MB_STATUS = 0;
export const MB_KIND = 1;
export const MB_WRITE = 2;
export const MB_SIZE = 3;
export const MB_COUNT = 4;
export const MB_ADDR_LO = 5;
export const MB_ADDR_HI = 6;
export const MB_HEADER_BYTES = 64;
/** A string PIO moves at most one page through kvm_run's data area; MMIO at most 8 bytes. */
export const MB_DATA_BYTES = 4096;
export const MB_BYTES = MB_HEADER_BYTES + MB_DATA_BYTES;

export const MB_IDLE = 0;
export const MB_REQUEST = 1;
export const MB_DONE = 2;

export const KIND_PIO = 0;
export const KIND_MMIO = 1;

/**
 * Exit counters (Float64Array), indexed by exit_reason (reasons past STATS_LAST_REASON count
 * there); then unclaimed port accesses the thread answered itself, and forwarded accesses.
 */
export const STATS_SLOTS = 256;
export const STATS_FORWARDED = STATS_SLOTS - 1;
export const STATS_UNCLAIMED = STATS_SLOTS - 2;
export const STATS_LAST_REASON = STATS_SLOTS - 3;
/** Distinct unclaimed ports one thread reports to the main thread's log (all are counted). */
export const THREAD_UNCLAIMED_REPORTS = 64;

/** Port map values: how a vCPU thread handles a port without asking anyone. */
export const PORT_UNCLAIMED = 0;
export const PORT_FORWARD = 1;
/** Values from here on are (index + PORT_LOCAL_BASE) into the worker's local devices. */
export const PORT_LOCAL_BASE = 2;

/** A device that lives in every vCPU thread: its module exports a class constructed as `new C(host, options)`. */
export interface LocalDeviceSpec {
  module: string;
  exportName: string;
  options?: unknown;
}

export interface VcpuWorkerInit {
  index: number;
  vcpuFd: number;
  vmFd: number;
  runSize: number;
  layout: import('../kvm/run-layout.js').RunLayout;
  control: SharedArrayBuffer;
  mailbox: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  portMap: Uint8Array;
  localDevices: LocalDeviceSpec[];
  /** performance.timeOrigin + performance.now() at VM start, so every thread's now() agrees. */
  startedAt: number;
}

/** What a vCPU thread posts to the main thread. */
export type VcpuMessage =
  /** `at`: epoch ms (performance.timeOrigin + now) just before the first KVM_RUN. */
  | { type: 'ready'; tid: number; at: number }
  | { type: 'log'; line: string }
  | { type: 'console'; bytes: Uint8Array }
  | { type: 'unclaimed'; where: string; kind: 'read' | 'write'; size: number }
  | { type: 'irq-error'; message: string }
  | { type: 'end'; outcome: VcpuOutcome };

/** Why a vCPU thread stopped running its vCPU. */
export interface VcpuOutcome {
  /** 'stopped' by the VMM, 'guest-exit' by a device or system event, 'error' for a fatal exit. */
  kind: 'stopped' | 'guest-exit' | 'error';
  /** KVM_EXIT_* name of the last exit, or the reason given by the device. */
  exitReason: string;
  status: number;
  message: string;
  rip?: string;
}
