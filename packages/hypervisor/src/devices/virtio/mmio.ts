/**
 * The virtio-mmio transport, version 2 (virtio 1.x §4.2): one 4 KiB register window per device on
 * the MMIO bus, decoded onto the transport core (core.ts: features, status, queues), and
 * InterruptStatus. It knows no device type
 * (blk, rng, … are behind VirtioDevice) and no KVM: how notifications arrive (ioeventfd or an MMIO
 * exit) and how the interrupt is raised (irqfd or KVM_IRQ_LINE) is its host's business.
 */
import type { MmioDevice } from '../device.js';
import { hex } from '../../hex.js';
import type { VirtioDevice } from './device.js';
import { half, VirtioTransportCore, withHalf } from './core.js';
import type { QueueMemory } from './queue.js';

export type { NotifyPath, TransportStats } from './core.js';

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

/** How the transport reaches the rest of the VMM. */
export interface TransportHost {
  /** Raise the device's interrupt line once (an edge). */
  interrupt(): void;
  log(line: string): void;
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
export class MmioTransport extends VirtioTransportCore implements MmioDevice {
  readonly ranges: ReadonlyArray<readonly [bigint, bigint]>;
  private deviceFeaturesSel = 0;
  private driverFeaturesSel = 0;
  private interruptStatus = 0;

  constructor(
    device: VirtioDevice,
    memory: QueueMemory,
    readonly base: bigint,
    private readonly host: TransportHost,
  ) {
    super(device, memory, (line) => host.log(line));
    this.ranges = [[base, BigInt(MMIO_WINDOW)]];
  }

  /** The guest-physical address of QueueNotify, where an ioeventfd may catch the doorbell. */
  get notifyAddress(): bigint {
    return this.base + BigInt(REG.QueueNotify);
  }

  protected signal(bits: number): void {
    this.interruptStatus |= bits;
    this.host.interrupt();
  }

  protected resetRegisters(): void {
    this.interruptStatus = 0;
    this.deviceFeaturesSel = 0;
    this.driverFeaturesSel = 0;
  }

  read(addr: bigint, data: Uint8Array): void {
    const off = Number(addr - this.base);
    if (off >= REG.Config) {
      data.fill(0);
      const at = off - REG.Config;
      if (at + data.length <= this.device.configSize) this.device.readConfig(at, data);
      else this.registerAccess(off, data.length, 'read', `beyond the ${this.device.configSize}-byte config space`);
      return;
    }
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    if (data.length !== 4 || off % 4 !== 0) {
      data.fill(0);
      this.registerAccess(off, data.length, 'read', 'not a 32-bit aligned register access');
      return;
    }
    view.setUint32(0, this.readRegister(off) >>> 0, true);
  }

  write(addr: bigint, data: Uint8Array): void {
    const off = Number(addr - this.base);
    if (off >= REG.Config) {
      const at = off - REG.Config;
      if (at + data.length <= this.device.configSize) this.device.writeConfig(at, data);
      else this.registerAccess(off, data.length, 'write', `beyond the ${this.device.configSize}-byte config space`);
      return;
    }
    if (data.length !== 4 || off % 4 !== 0) {
      this.registerAccess(off, data.length, 'write', 'not a 32-bit aligned register access');
      return;
    }
    this.writeRegister(off, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
  }

  private registerAccess(off: number, size: number, kind: 'read' | 'write', why: string): void {
    this.badAccess(size, kind === 'write', `at offset ${hex(off, 3)}`, why);
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
        return this.offeredWord(this.deviceFeaturesSel);
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
    const qw = this.writableQueue();
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
        this.acceptWord(this.driverFeaturesSel, v);
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
}
