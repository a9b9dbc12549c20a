/**
 * One PCI function's 256-byte type-0 configuration space (PCI Local Bus 3.0 §6.1): the header,
 * 32-bit memory BARs and a capability list. Every byte has a write mask, so a write of any width
 * at any offset changes exactly the writable bits — BAR sizing falls out of it: a BAR's mask
 * keeps the low log2(size) bits at zero, so writing all-ones reads back the size mask. Accesses are
 * bounds-checked here; bytes beyond the 256 read as all-ones and ignore writes, as on a bus with
 * nothing behind them.
 */

export const CONFIG_SIZE = 256;

/** Header offsets and bits (pci_regs.h names). */
export const CFG = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  Revision: 0x08,
  ClassProg: 0x09,
  CacheLineSize: 0x0c,
  HeaderType: 0x0e,
  Bar0: 0x10,
  SubsystemVendorId: 0x2c,
  SubsystemId: 0x2e,
  RomAddress: 0x30,
  CapabilityList: 0x34,
  InterruptLine: 0x3c,
  InterruptPin: 0x3d,
} as const;

export const COMMAND_MEMORY = 0x2;
export const COMMAND_MASTER = 0x4;
export const COMMAND_SERR = 0x100;
export const COMMAND_PARITY = 0x40;
export const COMMAND_INTX_DISABLE = 0x400;
export const STATUS_CAP_LIST = 0x10;
export const BAR_COUNT = 6;
/** The first byte capabilities may use: right after the type-0 header. */
const CAPS_START = 0x40;

export interface PciIds {
  vendor: number;
  device: number;
  /** Base class, sub-class and programming interface: 0x060000 a host bridge. */
  classCode: number;
  revision?: number;
  subsystemVendor?: number;
  subsystem?: number;
}

/** What sits behind a memory BAR: offsets are from the BAR's base, and the access lies inside it. */
export interface BarHandler {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

interface Bar {
  size: number;
  handler: BarHandler;
}

export class PciConfigError extends Error {
  override name = 'PciConfigError';
}

export class PciFunction {
  readonly config = new Uint8Array(CONFIG_SIZE);
  private readonly wmask = new Uint8Array(CONFIG_SIZE);
  private readonly view = new DataView(this.config.buffer);
  private readonly bars: Array<Bar | undefined> = new Array<Bar | undefined>(BAR_COUNT).fill(undefined);
  private capEnd = CAPS_START;
  private lastCap = -1;
  /** Called after every config write that changed a BAR or the command register. */
  onDecodeChange: () => void = () => {};
  /** Called after every config write, with the range it touched. */
  onConfigWrite: (offset: number, length: number) => void = () => {};
  /** Called before a config read, with its range (a capability whose bytes are computed on read). */
  onConfigRead: (offset: number, length: number) => void = () => {};

  constructor(readonly name: string, ids: PciIds) {
    this.view.setUint16(CFG.VendorId, ids.vendor, true);
    this.view.setUint16(CFG.DeviceId, ids.device, true);
    this.config[CFG.Revision] = ids.revision ?? 0;
    this.config[CFG.ClassProg] = ids.classCode & 0xff;
    this.view.setUint16(CFG.ClassProg + 1, (ids.classCode >> 8) & 0xffff, true);
    this.view.setUint16(CFG.SubsystemVendorId, ids.subsystemVendor ?? 0, true);
    this.view.setUint16(CFG.SubsystemId, ids.subsystem ?? 0, true);
    this.setMask(CFG.Command, 2, COMMAND_MEMORY | COMMAND_MASTER | COMMAND_PARITY | COMMAND_SERR | COMMAND_INTX_DISABLE);
    this.setMask(CFG.CacheLineSize, 1, 0xff);
    this.setMask(CFG.InterruptLine, 1, 0xff);
  }

  /** Makes bits of a little-endian field writable (on top of whatever was). */
  setMask(offset: number, length: number, mask: number): void {
    for (let i = 0; i < length; i++) this.wmask[offset + i] |= (mask / 2 ** (8 * i)) & 0xff;
  }

  /** A 32-bit non-prefetchable memory BAR of `size` bytes (a power of two, at least 16). */
  addBar(index: number, size: number, handler: BarHandler): void {
    if (!Number.isInteger(index) || index < 0 || index >= BAR_COUNT || this.bars[index]) throw new PciConfigError(`${this.name}: BAR ${index} is not free`);
    if (size < 16 || size > 0x8000_0000 || (size & (size - 1)) !== 0) throw new PciConfigError(`${this.name}: BAR size ${size} is not a power of two from 16 bytes to 2 GiB`);
    this.bars[index] = { size, handler };
    this.setMask(CFG.Bar0 + 4 * index, 4, (0x1_0000_0000 - size) >>> 0);
  }

  barSize(index: number): number | undefined {
    return this.bars[index]?.size;
  }

  barHandler(index: number): BarHandler | undefined {
    return this.bars[index]?.handler;
  }

  /** Sets a BAR's base, as firmware (the VMM) places it. */
  placeBar(index: number, base: number): void {
    this.view.setUint32(CFG.Bar0 + 4 * index, base >>> 0, true);
  }

  /** The BAR's base as the guest programmed it (the low flag bits are zero: 32-bit memory). */
  barBase(index: number): number {
    return (this.view.getUint32(CFG.Bar0 + 4 * index, true) & ~0xf) >>> 0;
  }

  get command(): number {
    return this.view.getUint16(CFG.Command, true);
  }

  /** The BARs that decode now: memory space enabled, each [base, size) with its handler. */
  decodedBars(): Array<{ index: number; base: number; size: number; handler: BarHandler }> {
    if (!(this.command & COMMAND_MEMORY)) return [];
    const out: Array<{ index: number; base: number; size: number; handler: BarHandler }> = [];
    this.bars.forEach((bar, index) => {
      if (bar) out.push({ index, base: this.barBase(index), size: bar.size, handler: bar.handler });
    });
    return out;
  }

  /**
   * Appends a capability: `body` is everything after the ID and next-pointer bytes; `mask` (same
   * length as body) the writable bits. Returns the capability's offset in config space.
   */
  addCapability(id: number, body: Uint8Array, mask?: Uint8Array): number {
    const at = this.capEnd;
    const length = 2 + body.length;
    if (at + length > CONFIG_SIZE) throw new PciConfigError(`${this.name}: capabilities do not fit the 256-byte config space`);
    this.config[at] = id;
    this.config[at + 1] = 0;
    this.config.set(body, at + 2);
    if (mask) this.wmask.set(mask.subarray(0, body.length), at + 2);
    if (this.lastCap < 0) {
      this.config[CFG.CapabilityList] = at;
      this.view.setUint16(CFG.Status, this.view.getUint16(CFG.Status, true) | STATUS_CAP_LIST, true);
    } else this.config[this.lastCap + 1] = at;
    this.lastCap = at;
    // Capabilities start dword aligned (the low two bits of a pointer are reserved).
    this.capEnd = (at + length + 3) & ~3;
    return at;
  }

  /** A config read of `data.length` bytes at `offset`: any width, any offset; bytes beyond 256 read as all-ones. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0xff);
    const end = Math.min(offset + data.length, CONFIG_SIZE);
    if (offset < 0 || offset >= end) return;
    this.onConfigRead(offset, end - offset);
    data.set(this.config.subarray(offset, end));
  }

  /** A config write: only the writable bits of the bytes inside the 256 change. */
  write(offset: number, data: Uint8Array): void {
    const end = Math.min(offset + data.length, CONFIG_SIZE);
    if (offset < 0 || offset >= end) return;
    const command = this.command;
    const barsBefore = this.barWords();
    for (let at = offset; at < end; at++) {
      const m = this.wmask[at];
      this.config[at] = (this.config[at] & ~m) | (data[at - offset] & m);
    }
    this.onConfigWrite(offset, end - offset);
    if (command !== this.command || barsBefore !== this.barWords()) this.onDecodeChange();
  }

  private barWords(): string {
    return this.bars.map((b, i) => (b ? this.barBase(i) : 0)).join(',');
  }
}
