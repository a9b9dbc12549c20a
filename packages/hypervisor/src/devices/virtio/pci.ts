/**
 * The virtio-pci modern transport (virtio 1.x §4.1): a PCI function (vendor 0x1af4, device
 * 0x1040 + the virtio id) whose capability list points the driver at the common configuration,
 * notification, ISR and device configuration structures in BAR 0, plus the PCI configuration
 * access capability, and an MSI-X capability whose table and pending bits sit in BAR 1. Its
 * registers decode onto the transport core (core.ts); it knows no device type, and nothing of KVM:
 * how a doorbell arrives (ioeventfd or MMIO exit) and how an MSI-X message is sent is its host's.
 * A driver that leaves MSI-X off gets the ISR bits but no interrupt (INTx is not wired; logged once).
 */
import { hex } from '../../hex.js';
import { PciFunction } from '../pci/function.js';
import { Msix, type MsiMessage } from '../pci/msix.js';
import { half, VirtioTransportCore, withHalf } from './core.js';
import { INT_CONFIG_CHANGE, INT_USED_BUFFER, type VirtioDevice } from './device.js';
import type { QueueMemory } from './queue.js';

export const VIRTIO_PCI_VENDOR = 0x1af4;
/** Modern-only device ids are 0x1040 + the virtio device id (§4.1.2). */
export const VIRTIO_PCI_DEVICE_BASE = 0x1040;
/** "Non-transitional devices SHOULD have a PCI Subsystem Device ID of 0x40 or higher" (§4.1.2.1). */
export const VIRTIO_PCI_SUBSYSTEM = 0x40;
export const VIRTIO_PCI_REVISION = 1;
export const CAP_ID_VENDOR = 0x09;
/** virtio_pci_cap.cfg_type (§4.1.4). */
export const CAP = { Common: 1, Notify: 2, Isr: 3, Device: 4, PciCfg: 5 } as const;
/** MSI-X vector value meaning "none" (§4.1.5.1.2). */
export const NO_VECTOR = 0xffff;

/** BAR 0: one page per structure. BAR 1: the MSI-X table, then the PBA. */
export const BAR0_SIZE = 0x4000;
export const LAYOUT = { common: 0x0000, isr: 0x1000, device: 0x2000, notify: 0x3000 } as const;
export const STRUCT_SIZE = 0x1000;
export const NOTIFY_MULTIPLIER = 4;
export const BAR1_SIZE = 0x1000;
export const MSIX_TABLE = 0x000;
export const MSIX_PBA = 0x800;
/** At most the vectors the table's half of BAR 1 holds. */
export const MAX_VECTORS = MSIX_PBA / 16;

/** struct virtio_pci_common_cfg (§4.1.4.3): offset → [field, width]. */
export const COMMON = {
  DeviceFeatureSelect: 0x00,
  DeviceFeature: 0x04,
  DriverFeatureSelect: 0x08,
  DriverFeature: 0x0c,
  ConfigMsixVector: 0x10,
  NumQueues: 0x12,
  DeviceStatus: 0x14,
  ConfigGeneration: 0x15,
  QueueSelect: 0x16,
  QueueSize: 0x18,
  QueueMsixVector: 0x1a,
  QueueEnable: 0x1c,
  QueueNotifyOff: 0x1e,
  QueueDesc: 0x20,
  QueueDriver: 0x28,
  QueueDevice: 0x30,
  QueueNotifyData: 0x38,
  QueueReset: 0x3a,
} as const;
export const COMMON_SIZE = 0x3c;

const WIDTH: Readonly<Record<number, number>> = {
  [COMMON.DeviceFeatureSelect]: 4,
  [COMMON.DeviceFeature]: 4,
  [COMMON.DriverFeatureSelect]: 4,
  [COMMON.DriverFeature]: 4,
  [COMMON.ConfigMsixVector]: 2,
  [COMMON.NumQueues]: 2,
  [COMMON.DeviceStatus]: 1,
  [COMMON.ConfigGeneration]: 1,
  [COMMON.QueueSelect]: 2,
  [COMMON.QueueSize]: 2,
  [COMMON.QueueMsixVector]: 2,
  [COMMON.QueueEnable]: 2,
  [COMMON.QueueNotifyOff]: 2,
  [COMMON.QueueNotifyData]: 2,
  [COMMON.QueueReset]: 2,
};
/** The 64-bit ring addresses, taken whole or as two 32-bit halves. */
const ADDRESS: Readonly<Record<number, 'desc' | 'driver' | 'device'>> = {
  [COMMON.QueueDesc]: 'desc',
  [COMMON.QueueDriver]: 'driver',
  [COMMON.QueueDevice]: 'device',
};

/** PCI class codes by virtio device id: network, mass storage, communication; otherwise "other". */
const CLASS_CODES: Readonly<Record<number, number>> = { 1: 0x02_00_00, 2: 0x01_80_00, 3: 0x07_80_00 };
const CLASS_OTHER = 0xff_00_00;

export interface PciTransportHost {
  /** Send an MSI-X message (vector `vector` of this function). */
  msi(vector: number, msg: MsiMessage): void;
  log(line: string): void;
}

export class VirtioPciTransport extends VirtioTransportCore {
  readonly pci: PciFunction;
  readonly msix: Msix;
  private deviceFeatureSel = 0;
  private driverFeatureSel = 0;
  private isr = 0;
  private configVector = NO_VECTOR;
  private queueVectors: number[];
  private reportedIntx = false;
  private readonly pciCfgAt: number;

  constructor(
    device: VirtioDevice,
    memory: QueueMemory,
    private readonly host: PciTransportHost,
  ) {
    super(device, memory, (line) => host.log(line));
    this.queueVectors = new Array<number>(device.queueSizes.length).fill(NO_VECTOR);
    const fn = (this.pci = new PciFunction(device.name, {
      vendor: VIRTIO_PCI_VENDOR,
      device: VIRTIO_PCI_DEVICE_BASE + device.type,
      classCode: CLASS_CODES[device.type] ?? CLASS_OTHER,
      revision: VIRTIO_PCI_REVISION,
      subsystemVendor: VIRTIO_PCI_VENDOR,
      subsystem: VIRTIO_PCI_SUBSYSTEM,
    }));
    fn.addBar(0, BAR0_SIZE, { read: (off, data) => this.bar0(off, data, false), write: (off, data) => this.bar0(off, data, true) });
    const vectors = Math.min(device.queueSizes.length + 1, MAX_VECTORS);
    this.msix = new Msix(fn, { vectors, bar: 1, tableOffset: MSIX_TABLE, pbaOffset: MSIX_PBA }, (v, msg) => host.msi(v, msg), (line) => host.log(line));
    fn.addBar(1, BAR1_SIZE, this.msix);
    fn.addCapability(CAP_ID_VENDOR, virtioCap(CAP.Common, 0, LAYOUT.common, COMMON_SIZE));
    fn.addCapability(CAP_ID_VENDOR, virtioCap(CAP.Notify, 0, LAYOUT.notify, Math.max(1, device.queueSizes.length) * NOTIFY_MULTIPLIER, NOTIFY_MULTIPLIER));
    fn.addCapability(CAP_ID_VENDOR, virtioCap(CAP.Isr, 0, LAYOUT.isr, 1));
    if (device.configSize > 0) fn.addCapability(CAP_ID_VENDOR, virtioCap(CAP.Device, 0, LAYOUT.device, device.configSize));
    // VIRTIO_PCI_CAP_PCI_CFG: a window into the BARs through config space (bar, offset, length, data writable).
    const cfgMask = new Uint8Array(18);
    cfgMask[2] = 0xff;
    cfgMask.fill(0xff, 6, 18);
    this.pciCfgAt = fn.addCapability(CAP_ID_VENDOR, virtioCap(CAP.PciCfg, 0, 0, 0, 0), cfgMask);
    const previous = fn.onConfigWrite;
    fn.onConfigWrite = (offset, length) => {
      previous(offset, length);
      if (this.touchesCfgData(offset, length)) this.pciCfgAccess(true);
    };
    fn.onConfigRead = (offset, length) => {
      if (this.touchesCfgData(offset, length)) this.pciCfgAccess(false);
    };
  }

  protected override initialQueueNum(queue: number): number {
    return this.device.queueSizes[queue];
  }

  protected resetRegisters(): void {
    this.isr = 0;
    this.deviceFeatureSel = 0;
    this.driverFeatureSel = 0;
    this.configVector = NO_VECTOR;
    this.queueVectors.fill(NO_VECTOR);
  }

  protected signal(bits: number, queue: number | undefined): void {
    if (!this.msix.enabled) {
      this.isr |= bits;
      if (!this.reportedIntx) {
        this.reportedIntx = true;
        this.log('the driver left MSI-X off: interrupts are not delivered (INTx is not wired)');
      }
      return;
    }
    // With MSI-X on, only a configuration change shows in the ISR (§4.1.4.5.1).
    if (bits & INT_CONFIG_CHANGE) this.isr |= INT_CONFIG_CHANGE;
    const vector = bits & INT_USED_BUFFER && queue !== undefined ? this.queueVectors[queue] : this.configVector;
    if (vector !== NO_VECTOR) this.msix.fire(vector);
  }

  /** Where the driver rings queue `q`'s doorbell, as an offset in BAR 0. */
  notifyOffset(q: number): number {
    return LAYOUT.notify + q * NOTIFY_MULTIPLIER;
  }

  private bar0(off: number, data: Uint8Array, write: boolean): void {
    if (!write) data.fill(0);
    const region = off - (off % STRUCT_SIZE);
    const at = off - region;
    switch (region) {
      case LAYOUT.common:
        return this.common(at, data, write);
      case LAYOUT.isr:
        if (at !== 0 || write) return this.barAccess(off, data.length, write, 'the ISR is one read-only byte');
        data[0] = this.isr;
        // Reading the ISR acknowledges it (§4.1.4.5).
        this.isr = 0;
        return;
      case LAYOUT.device:
        if (at + data.length > this.device.configSize) return this.barAccess(off, data.length, write, `beyond the ${this.device.configSize}-byte config space`);
        if (write) this.device.writeConfig(at, data);
        else this.device.readConfig(at, data);
        return;
      case LAYOUT.notify: {
        const q = at / NOTIFY_MULTIPLIER;
        if (!write || !Number.isInteger(q) || q >= this.queueCount) return this.barAccess(off, data.length, write, 'not a queue doorbell write');
        this.notify(q, 'mmio');
        return;
      }
      default:
        return this.barAccess(off, data.length, write, 'outside every virtio structure');
    }
  }

  private common(at: number, data: Uint8Array, write: boolean): void {
    const view = new DataView(data.buffer, data.byteOffset, data.length);
    const address = ADDRESS[at - (at % 8)];
    if (address && (data.length === 8 ? at % 8 === 0 : data.length === 4 && at % 4 === 0)) {
      const q = this.regs[this.queueSel];
      if (!write) {
        if (!q) return;
        if (data.length === 8) view.setBigUint64(0, BigInt(q[address]), true);
        else view.setUint32(0, half(q[address], (at % 8) / 4 as 0 | 1), true);
        return;
      }
      const qw = this.writableQueue();
      if (!qw) return;
      if (data.length === 8) qw[address] = Number(view.getBigUint64(0, true) & 0x1f_ffff_ffff_ffffn);
      else qw[address] = withHalf(qw[address], (at % 8) / 4 as 0 | 1, view.getUint32(0, true));
      return;
    }
    const width = WIDTH[at];
    if (width === undefined || width !== data.length) return this.barAccess(LAYOUT.common + at, data.length, write, 'not a common configuration field of that width');
    if (write) this.writeCommon(at, width === 4 ? view.getUint32(0, true) : width === 2 ? view.getUint16(0, true) : data[0]);
    else {
      const v = this.readCommon(at);
      if (width === 4) view.setUint32(0, v >>> 0, true);
      else if (width === 2) view.setUint16(0, v & 0xffff, true);
      else data[0] = v & 0xff;
    }
  }

  private readCommon(at: number): number {
    const q = this.regs[this.queueSel];
    switch (at) {
      case COMMON.DeviceFeatureSelect:
        return this.deviceFeatureSel;
      case COMMON.DeviceFeature:
        return this.offeredWord(this.deviceFeatureSel);
      case COMMON.DriverFeatureSelect:
        return this.driverFeatureSel;
      case COMMON.DriverFeature:
        return this.acceptedWord(this.driverFeatureSel);
      case COMMON.ConfigMsixVector:
        return this.configVector;
      case COMMON.NumQueues:
        return this.queueCount;
      case COMMON.DeviceStatus:
        return this.status;
      case COMMON.ConfigGeneration:
        return this.configGeneration;
      case COMMON.QueueSelect:
        return this.queueSel;
      case COMMON.QueueSize:
        return q?.num ?? 0;
      case COMMON.QueueMsixVector:
        return q ? this.queueVectors[this.queueSel] : NO_VECTOR;
      case COMMON.QueueEnable:
        return q?.ready ? 1 : 0;
      case COMMON.QueueNotifyOff:
        return q ? this.queueSel : 0;
      default:
        return 0; // queue_notify_data, queue_reset: the features that give them meaning are not offered
    }
  }

  private writeCommon(at: number, v: number): void {
    const q = this.regs[this.queueSel];
    switch (at) {
      case COMMON.DeviceFeatureSelect:
        this.deviceFeatureSel = v;
        return;
      case COMMON.DriverFeatureSelect:
        this.driverFeatureSel = v;
        return;
      case COMMON.DriverFeature:
        this.acceptWord(this.driverFeatureSel, v);
        return;
      case COMMON.ConfigMsixVector:
        // A vector the table does not have reads back as NO_VECTOR, which tells the driver so (§4.1.5.1.2).
        this.configVector = v < this.msix.vectors ? v : NO_VECTOR;
        return;
      case COMMON.DeviceStatus:
        this.setStatus(v);
        return;
      case COMMON.QueueSelect:
        this.queueSel = v;
        return;
      case COMMON.QueueSize: {
        const qw = this.writableQueue();
        if (qw) qw.num = v;
        return;
      }
      case COMMON.QueueMsixVector:
        if (q) this.queueVectors[this.queueSel] = v < this.msix.vectors ? v : NO_VECTOR;
        return;
      case COMMON.QueueEnable:
        // Only 1 is defined; a queue stops by a device reset (§4.1.4.3.2).
        if (q && v === 1) this.setQueueReady(this.queueSel, true);
        return;
      default:
        return; // read-only fields ignore writes
    }
  }

  private barAccess(off: number, size: number, write: boolean, why: string): void {
    this.badAccess(size, write, `at BAR 0 offset ${hex(off, 4)}`, why);
  }

  /** The pci_cfg_data bytes of the PCI configuration access capability. */
  private touchesCfgData(offset: number, length: number): boolean {
    const data = this.pciCfgAt + 16;
    return offset < data + 4 && offset + length > data;
  }

  /** An access through pci_cfg_data: `length` bytes at `offset` of BAR `bar`, as the capability says (§4.1.4.9). */
  private pciCfgAccess(write: boolean): void {
    const cfg = this.pci.config;
    const view = new DataView(cfg.buffer);
    const at = this.pciCfgAt;
    const bar = cfg[at + 4];
    const offset = view.getUint32(at + 8, true);
    const length = view.getUint32(at + 12, true);
    const size = this.pci.barSize(bar);
    if (size === undefined || ![1, 2, 4].includes(length) || offset % length !== 0 || offset + length > size) return;
    const data = cfg.subarray(at + 16, at + 16 + length);
    const handler = this.pci.barHandler(bar);
    if (!handler) return;
    if (write) handler.write(offset, data.slice());
    else handler.read(offset, data);
  }
}

/** struct virtio_pci_cap after its ID and next bytes (and notify_off_multiplier or pci_cfg_data). */
function virtioCap(type: number, bar: number, offset: number, length: number, extra?: number): Uint8Array {
  const body = new Uint8Array(extra === undefined ? 14 : 18);
  const view = new DataView(body.buffer);
  body[0] = body.length + 2; // cap_len
  body[1] = type;
  body[2] = bar;
  view.setUint32(6, offset, true);
  view.setUint32(10, length, true);
  if (extra !== undefined) view.setUint32(14, extra, true);
  return body;
}
