/**
 * The virtio-mmio transport, version 2 (virtio 1.x §4.2): one 4 KiB register window per device on
 * the MMIO bus. It negotiates features, builds split queues from the driver's ring addresses,
 * forwards queue notifications to the device and keeps InterruptStatus. It knows no device type
 * (blk, rng, … are behind VirtioDevice) and no KVM: how notifications arrive (ioeventfd or an MMIO
 * exit) and how the interrupt is raised (irqfd or KVM_IRQ_LINE) is its host's business.
 */
import type { MmioDevice } from '../device.js';
import { hex } from '../../hex.js';
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

export const MMIO_WINDOW = 0x1000;
export const MAGIC = 0x7472_6976; // "virt"
export const VERSION = 2;
/** "KVTS": the vendor id kvm-ts devices report. */
export const VENDOR_ID = 0x5354_564b;

/** Register offsets (§4.2.2). */
export const REG = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export type NotifyPath = 'ioeventfd' | 'mmio';

/** How the transport reaches the rest of the VMM. */
export interface TransportHost {
  /** Raise the device's interrupt line once (an edge). */
  interrupt(): void;
  log(line: string): void;
}

export interface TransportStats {
  notifications: Record<NotifyPath, number>;
  /** Interrupts raised (the host knows by which path). */
  interrupts: number;
  /** Notifications for a queue that was not running (not ready, reset, failed, bad index). */
  ignoredNotifications: number;
  /** Times the device was set to DEVICE_NEEDS_RESET. */
  needsReset: number;
  /** Register accesses that were not 32-bit and aligned, or outside any register. */
  badAccesses: number;
  resets: number;
  queues: QueueStats[];
}

interface QueueRegs {
  num: number;
  ready: boolean;
  desc: number;
  driver: number;
  device: number;
}

/** The 64-bit ring address registers: which field of QueueRegs, and which half. */
const ADDRESS_REGS: Readonly<Record<number, readonly ['desc' | 'driver' | 'device', 0 | 1]>> = {
  [REG.QueueDescLow]: ['desc', 0],
  [REG.QueueDescHigh]: ['desc', 1],
  [REG.QueueDriverLow]: ['driver', 0],
  [REG.QueueDriverHigh]: ['driver', 1],
  [REG.QueueDeviceLow]: ['device', 0],
  [REG.QueueDeviceHigh]: ['device', 1],
};
const TWO_32 = 0x1_0000_0000;
const half = (v: number, h: 0 | 1) => (h ? Math.floor(v / TWO_32) : v % TWO_32);
const withHalf = (v: number, h: 0 | 1, x: number) => (h ? x * TWO_32 + half(v, 0) : half(v, 1) * TWO_32 + x);

export class MmioTransport implements MmioDevice {
  readonly name: string;
  readonly ranges: ReadonlyArray<readonly [bigint, bigint]>;
  readonly stats: TransportStats;
  private readonly offered: bigint;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private driverFeatures = 0n;
  private queueSel = 0;
  private regs: QueueRegs[];
  private queues: Array<SplitQueue | undefined>;
  private status = 0;
  private interruptStatus = 0;
  private configGeneration = 0;
  private ctx: Context | undefined;
  private reportedFailure = false;
  private reportedAccess = false;

  constructor(
    readonly device: VirtioDevice,
    private readonly memory: QueueMemory,
    readonly base: bigint,
    private readonly host: TransportHost,
  ) {
    this.name = device.name;
    this.ranges = [[base, BigInt(MMIO_WINDOW)]];
    this.offered = device.features | TRANSPORT_FEATURES;
    const n = device.queueSizes.length;
    this.regs = Array.from({ length: n }, () => ({ num: 0, ready: false, desc: 0, driver: 0, device: 0 }));
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

  /** The guest-physical address of QueueNotify, where an ioeventfd may catch the doorbell. */
  get notifyAddress(): bigint {
    return this.base + BigInt(REG.QueueNotify);
  }

  get queueCount(): number {
    return this.regs.length;
  }

  /** The device status register (for tests and diagnostics). */
  get deviceStatus(): number {
    return this.status;
  }

  read(addr: bigint, data: Uint8Array): void {
    const off = Number(addr - this.base);
    if (off >= REG.Config) {
      data.fill(0);
      const at = off - REG.Config;
      if (at + data.length <= this.device.configSize) this.device.readConfig(at, data);
      else this.badAccess(off, data.length, 'read', `beyond the ${this.device.configSize}-byte config space`);
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    if (data.length !== 4 || off % 4 !== 0) {
      data.fill(0);
      this.badAccess(off, data.length, 'read', 'not a 32-bit aligned register access');
      return;
    }
    view.setUint32(0, this.readRegister(off) >>> 0, true);
  }

  write(addr: bigint, data: Uint8Array): void {
    const off = Number(addr - this.base);
    if (off >= REG.Config) {
      const at = off - REG.Config;
      if (at + data.length <= this.device.configSize) this.device.writeConfig(at, data);
      else this.badAccess(off, data.length, 'write', `beyond the ${this.device.configSize}-byte config space`);
      return;
    }
    if (data.length !== 4 || off % 4 !== 0) {
      this.badAccess(off, data.length, 'write', 'not a 32-bit aligned register access');
      return;
    }
    this.writeRegister(off, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
  }

  private badAccess(off: number, size: number, kind: string, why: string): void {
    this.stats.badAccesses++;
    if (this.reportedAccess) return;
    this.reportedAccess = true;
    this.host.log(`${this.name}: ${size}-byte ${kind} at offset ${hex(off, 3)}: ${why} (ignored; further ones counted, not logged)`);
  }

  private readRegister(off: number): number {
    const q = this.regs[this.queueSel];
    const address = ADDRESS_REGS[off];
    // The queue registers read back what the driver wrote (virtio 1.x allows reading them).
    if (address) return q ? half(q[address[0]], address[1]) : 0;
    switch (off) {
      case REG.MagicValue:
        return MAGIC;
      case REG.Version:
        return VERSION;
      case REG.DeviceID:
        return this.device.type;
      case REG.VendorID:
        return VENDOR_ID;
      case REG.DeviceFeatures:
        return this.deviceFeaturesSel > 1 ? 0 : Number((this.offered >> BigInt(32 * this.deviceFeaturesSel)) & 0xffff_ffffn);
      case REG.QueueNumMax:
        return q ? this.device.queueSizes[this.queueSel] : 0;
      case REG.QueueReady:
        return q?.ready ? 1 : 0;
      case REG.InterruptStatus:
        return this.interruptStatus;
      case REG.Status:
        return this.status;
      case REG.SHMLenLow:
      case REG.SHMLenHigh:
      case REG.SHMBaseLow:
      case REG.SHMBaseHigh:
        return 0xffff_ffff; // no shared memory regions
      case REG.ConfigGeneration:
        return this.configGeneration;
      case REG.QueueNum:
        return q?.num ?? 0;
      default:
        return 0; // write-only and reserved registers
    }
  }

  private writeRegister(off: number, v: number): void {
    const q = this.regs[this.queueSel];
    // Queue registers change only while that queue is not ready (§4.2.2.2).
    const qw = q && !q.ready ? q : undefined;
    const address = ADDRESS_REGS[off];
    if (address) {
      if (qw) qw[address[0]] = withHalf(qw[address[0]], address[1], v);
      return;
    }
    switch (off) {
      case REG.DeviceFeaturesSel:
        this.deviceFeaturesSel = v;
        return;
      case REG.DriverFeaturesSel:
        this.driverFeaturesSel = v;
        return;
      case REG.DriverFeatures:
        if (this.status & STATUS_FEATURES_OK || this.driverFeaturesSel > 1) return;
        {
          const shift = BigInt(32 * this.driverFeaturesSel);
          this.driverFeatures = (this.driverFeatures & ~(0xffff_ffffn << shift)) | (BigInt(v) << shift);
        }
        return;
      case REG.QueueSel:
        this.queueSel = v;
        return;
      case REG.QueueNum:
        if (qw) qw.num = v;
        return;
      case REG.QueueReady:
        if (q) this.setQueueReady(this.queueSel, v === 1);
        return;
      case REG.QueueNotify:
        this.notify(v, 'mmio');
        return;
      case REG.InterruptACK:
        this.interruptStatus &= ~v;
        return;
      case REG.Status:
        this.setStatus(v);
        return;
      default:
        return; // read-only and reserved registers ignore writes
    }
  }

  private setQueueReady(i: number, ready: boolean): void {
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

  private setStatus(v: number): void {
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
      // The driver may accept only what was offered, and a version 2 transport needs VERSION_1.
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
    this.interruptStatus = 0;
    this.driverFeatures = 0n;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
    this.queueSel = 0;
    for (const q of this.regs) Object.assign(q, { num: 0, ready: false, desc: 0, driver: 0, device: 0 });
  }

  private retire(): void {
    if (this.ctx) this.ctx.alive = false;
    this.ctx = undefined;
    for (const q of this.queues) if (q) q.retired = true;
    this.queues.fill(undefined);
    try {
      this.device.reset();
    } catch (err) {
      this.host.log(`${this.name}: reset failed: ${errorText(err)}`);
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
      this.host.log(`${this.name}: device needs reset: ${why} (the VM keeps running; further failures of this device are counted, not logged)`);
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

  raise(bits: number): void {
    this.interruptStatus |= bits;
    this.stats.interrupts++;
    this.host.interrupt();
  }

  /** Called by Context. */
  queueFor(i: number): SplitQueue | undefined {
    return this.queues[i];
  }

  usedBuffers(i: number): void {
    const q = this.queues[i];
    if (q && q.needsInterrupt()) this.raise(INT_USED_BUFFER);
  }

  get negotiated(): bigint {
    return this.driverFeatures;
  }

  /** A diagnostic line about this device. */
  log(line: string): void {
    this.host.log(`${this.name}: ${line}`);
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

  constructor(private readonly t: MmioTransport) {
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
