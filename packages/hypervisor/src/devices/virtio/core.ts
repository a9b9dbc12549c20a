/**
 * What every virtio transport does the same way (virtio 1.x §2–§3), whichever registers the driver
 * reaches it through: feature negotiation, the device status state machine, split queues built
 * from the driver's ring addresses, doorbells forwarded to the device, and DEVICE_NEEDS_RESET for a
 * misdriving driver. mmio.ts and pci.ts only decode their registers onto it and say how an
 * interrupt leaves (`signal`); neither this file nor they know a device type.
 */
import {
  INT_CONFIG_CHANGE,
  INT_USED_BUFFER,
  STATUS_DEVICE_NEEDS_RESET,
  STATUS_DRIVER_OK,
  STATUS_FEATURES_OK,
  TRANSPORT_FEATURES,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type QueueStats,
  type VirtioContext,
  type VirtioDevice,
} from './device.js';
import { SplitQueue, type QueueMemory } from './queue.js';

export type NotifyPath = 'ioeventfd' | 'mmio';

export interface TransportStats {
  notifications: Record<NotifyPath, number>;
  /** Interrupts raised (the host knows by which path). */
  interrupts: number;
  /** Notifications for a queue that was not running (not ready, reset, failed, bad index). */
  ignoredNotifications: number;
  /** Times the device was set to DEVICE_NEEDS_RESET. */
  needsReset: number;
  /** Register accesses that were not of a register's width and alignment, or outside any register. */
  badAccesses: number;
  resets: number;
  queues: QueueStats[];
}

export interface QueueRegs {
  num: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
}

const TWO_32 = 0x1_0000_0000;
/** Half `h` (0 low, 1 high) of a 64-bit ring address kept as a number. */
export const half = (v: number, h: 0 | 1) => (h ? Math.floor(v / TWO_32) : v % TWO_32);
/** `v` with half `h` replaced by the 32-bit `x`. */
export const withHalf = (v: number, h: 0 | 1, x: number) => (h ? x * TWO_32 + half(v, 0) : half(v, 1) * TWO_32 + x);

export abstract class VirtioTransportCore {
  readonly name: string;
  readonly stats: TransportStats;
  protected readonly offered: bigint;
  protected driverFeatures = 0n;
  protected queueSel = 0;
  protected regs: QueueRegs[];
  private queues: Array<SplitQueue | undefined>;
  protected status = 0;
  protected configGeneration = 0;
  private ctx: Context | undefined;
  private reportedFailure = false;
  private reportedAccess = false;

  constructor(
    readonly device: VirtioDevice,
    private readonly memory: QueueMemory,
    private readonly logLine: (line: string) => void,
  ) {
    this.name = device.name;
    this.offered = device.features | TRANSPORT_FEATURES;
    const n = device.queueSizes.length;
    this.regs = Array.from({ length: n }, (_, i) => ({ num: this.initialQueueNum(i), ready: false, desc: 0, driver: 0, device: 0 }));
    this.queues = new Array<SplitQueue | undefined>(n).fill(undefined);
    this.stats = {
      notifications: { ioeventfd: 0, mmio: 0 },
      interrupts: 0,
      ignoredNotifications: 0,
      needsReset: 0,
      badAccesses: 0,
      resets: 0,
      queues: Array.from({ length: n }, () => ({ notifications: 0, requests: 0, bytes: 0 })),
    };
  }

  /** Delivers an interrupt whose cause is `bits` (INT_USED_BUFFER for `queue`, or INT_CONFIG_CHANGE). */
  protected abstract signal(bits: number, queue: number | undefined): void;

  /** A queue's size after reset: mmio's QueueNum starts at 0, PCI's queue_size at the maximum. */
  protected initialQueueNum(_queue: number): number {
    return 0;
  }

  /** The transport's own registers back to their reset values (interrupt status, selectors). */
  protected abstract resetRegisters(): void;

  /** For `kvm-cli stat`: the transport's totals and the device's own counters. */
  counters(): Record<string, number> {
    const s = this.stats;
    const out: Record<string, number> = {
      notifications: s.notifications.ioeventfd + s.notifications.mmio,
      interrupts: s.interrupts,
      needsReset: s.needsReset,
      resets: s.resets,
      requests: s.queues.reduce((n, q) => n + q.requests, 0),
      bytes: s.queues.reduce((n, q) => n + q.bytes, 0),
    };
    return { ...out, ...(this.device.counters?.() ?? {}) };
  }

  get queueCount(): number {
    return this.regs.length;
  }

  /** The device status register (for tests and diagnostics). */
  get deviceStatus(): number {
    return this.status;
  }

  /** 32 offered feature bits, word `sel` (0 or 1; beyond: none). */
  protected offeredWord(sel: number): number {
    return sel > 1 ? 0 : Number((this.offered >> BigInt(32 * sel)) & 0xffff_ffffn);
  }

  /** The driver's 32 accepted feature bits of word `sel`; ignored once FEATURES_OK is set. */
  protected acceptWord(sel: number, v: number): void {
    if (this.status & STATUS_FEATURES_OK || sel > 1) return;
    const shift = BigInt(32 * sel);
    this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v >>> 0) << shift);
  }

  protected acceptedWord(sel: number): number {
    return sel > 1 ? 0 : Number((this.driverFeatures >> BigInt(32 * sel)) & 0xffff_ffffn);
  }

  /** The selected queue's registers while they may change (§4.2.2.2, §4.1.4.3: only while not ready). */
  protected writableQueue(): QueueRegs | undefined {
    const q = this.regs[this.queueSel];
    return q && !q.ready ? q : undefined;
  }

  protected setQueueReady(i: number, ready: boolean): void {
    const q = this.regs[i];
    if (!ready) {
      q.ready = false;
      if (this.queues[i]) this.queues[i]!.retired = true;
      this.queues[i] = undefined;
      return;
    }
    if (q.ready || this.status & STATUS_DEVICE_NEEDS_RESET) return;
    if (!(this.status & STATUS_FEATURES_OK)) {
      this.fail(`queue ${i} set ready before FEATURES_OK`);
      return;
    }
    try {
      this.queues[i] = new SplitQueue(
        this.memory,
        {
          size: q.num,
          desc: q.desc,
          avail: q.driver,
          used: q.device,
          eventIdx: (this.driverFeatures & (1n << VIRTIO_F_EVENT_IDX)) !== 0n,
          indirect: (this.driverFeatures & (1n << VIRTIO_F_INDIRECT_DESC)) !== 0n,
        },
        this.device.queueSizes[i],
      );
      q.ready = true;
    } catch (err) {
      this.fail(`queue ${i}: ${errorText(err)}`);
    }
  }

  protected setStatus(v: number): void {
    v &= 0xff;
    if (v === 0) {
      this.reset();
      return;
    }
    const was = this.status;
    // NEEDS_RESET is the device's to set; the driver cannot clear it except by a reset.
    let next = (v & ~STATUS_DEVICE_NEEDS_RESET) | (was & STATUS_DEVICE_NEEDS_RESET);
    if (next & STATUS_FEATURES_OK && !(was & STATUS_FEATURES_OK)) {
      const accepted = this.driverFeatures;
      // The driver may accept only what was offered, and a virtio 1.x transport needs VERSION_1.
      const ok = (accepted & ~this.offered) === 0n && (accepted & (1n << VIRTIO_F_VERSION_1)) !== 0n;
      if (!ok) next &= ~STATUS_FEATURES_OK;
    }
    this.status = next;
    if (next & STATUS_DRIVER_OK && !(was & STATUS_DRIVER_OK) && !(next & STATUS_DEVICE_NEEDS_RESET)) {
      if (!(next & STATUS_FEATURES_OK)) {
        this.fail('DRIVER_OK without FEATURES_OK');
        return;
      }
      this.activate();
    }
  }

  private activate(): void {
    const ctx = new Context(this);
    this.ctx = ctx;
    this.guard(() => this.device.activate(ctx));
  }

  /** Device reset (status 0): everything back to its initial state; queues and completions retired. */
  reset(): void {
    this.stats.resets++;
    this.retire();
    this.status = 0;
    this.driverFeatures = 0n;
    this.queueSel = 0;
    this.resetRegisters();
    this.regs.forEach((q, i) => Object.assign(q, { num: this.initialQueueNum(i), ready: false, desc: 0, driver: 0, device: 0 }));
  }

  private retire(): void {
    if (this.ctx) this.ctx.alive = false;
    this.ctx = undefined;
    for (const q of this.queues) if (q) q.retired = true;
    this.queues.fill(undefined);
    try {
      this.device.reset();
    } catch (err) {
      this.logLine(`${this.name}: reset failed: ${errorText(err)}`);
    }
  }

  /**
   * The driver misdrove the device: DEVICE_NEEDS_RESET and a configuration-change interrupt
   * (§2.1.2), one log line for the first time, and nothing more from this device until a reset.
   */
  fail(why: string): void {
    this.stats.needsReset++;
    if (!this.reportedFailure) {
      this.reportedFailure = true;
      this.logLine(`${this.name}: device needs reset: ${why} (the VM keeps running; further failures of this device are counted, not logged)`);
    }
    this.retire();
    for (const q of this.regs) q.ready = false;
    this.status |= STATUS_DEVICE_NEEDS_RESET;
    this.raise(INT_CONFIG_CHANGE);
  }

  /** Runs device code; whatever it throws becomes DEVICE_NEEDS_RESET instead of leaving the event loop. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.fail(errorText(err));
    }
  }

  /** A doorbell for queue `i`, by whichever path it came. */
  notify(i: number, via: NotifyPath): void {
    this.stats.notifications[via]++;
    const stats = this.stats.queues[i];
    if (!stats || !this.ctx || !this.queues[i]) {
      this.stats.ignoredNotifications++;
      return;
    }
    stats.notifications++;
    this.guard(() => this.device.notify(i));
  }

  raise(bits: number, queue?: number): void {
    this.stats.interrupts++;
    this.signal(bits, queue);
  }

  /** Called by Context. */
  queueFor(i: number): SplitQueue | undefined {
    return this.queues[i];
  }

  usedBuffers(i: number): void {
    const q = this.queues[i];
    if (q && q.needsInterrupt()) this.raise(INT_USED_BUFFER, i);
  }

  get negotiated(): bigint {
    return this.driverFeatures;
  }

  /** A register access the transport does not take (`where`: "at offset 0x…"): counted, and the first one logged. */
  protected badAccess(size: number, write: boolean, where: string, why: string): void {
    this.stats.badAccesses++;
    if (this.reportedAccess) return;
    this.reportedAccess = true;
    this.log(`${size}-byte ${write ? 'write' : 'read'} ${where}: ${why} (ignored; further ones counted, not logged)`);
  }

  /** A diagnostic line about this device. */
  log(line: string): void {
    this.logLine(`${this.name}: ${line}`);
  }

  /** The device changed its config space (e.g. a resized disk): new generation, config interrupt. */
  configChanged(): void {
    this.configGeneration = (this.configGeneration + 1) >>> 0;
    if (this.status & STATUS_DRIVER_OK) this.raise(INT_CONFIG_CHANGE);
  }
}

class Context implements VirtioContext {
  alive = true;
  readonly features: bigint;

  constructor(private readonly t: VirtioTransportCore) {
    this.features = t.negotiated;
  }

  queue(i: number): SplitQueue | undefined {
    return this.alive ? this.t.queueFor(i) : undefined;
  }

  used(i: number): void {
    if (this.alive) this.t.guard(() => this.t.usedBuffers(i));
  }

  count(i: number, bytes: number): void {
    const s = this.t.stats.queues[i];
    if (!this.alive || !s) return;
    s.requests++;
    s.bytes += bytes;
  }

  fail(why: string): void {
    if (this.alive) this.t.fail(why);
  }

  guard(fn: () => void): void {
    if (this.alive) this.t.guard(fn);
  }

  log(line: string): void {
    this.t.log(line);
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
