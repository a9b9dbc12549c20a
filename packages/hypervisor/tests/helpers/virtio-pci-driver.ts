/**
 * A virtio-pci driver in TypeScript for tests without KVM: a PciBus with one VirtioPciTransport,
 * reached as a guest would reach it — config space through ECAM (or conf1), the virtio structures
 * and the MSI-X table through the MMIO hole — and the MSI-X messages it sends, recorded.
 */
import { PCI_ECAM_BASE, PciBus } from '../../src/devices/pci/bus.js';
import { CFG, COMMAND_MASTER, COMMAND_MEMORY } from '../../src/devices/pci/function.js';
import { MSIX_ENABLE, type MsiMessage } from '../../src/devices/pci/msix.js';
import { STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK, TRANSPORT_FEATURES, type VirtioDevice } from '../../src/devices/virtio/device.js';
import { CAP, CAP_ID_VENDOR, COMMON, MSIX_TABLE, VirtioPciTransport } from '../../src/devices/virtio/pci.js';
import type { QueueMemory } from '../../src/devices/virtio/queue.js';
import { RingDriver, type DriverQueue } from './virtio-driver.js';

export interface Capability {
  at: number;
  id: number;
  /** virtio_pci_cap.cfg_type for vendor capabilities. */
  type?: number;
  bar?: number;
  offset?: number;
  length?: number;
}

export class PciTestDriver extends RingDriver {
  readonly bus: PciBus;
  readonly transport: VirtioPciTransport;
  readonly slot: number;
  readonly sent: Array<{ vector: number; msg: MsiMessage }> = [];

  /** `watch`: what the transport sees of guest RAM (a recording wrapper), by default the RAM itself. */
  constructor(device: VirtioDevice, memBytes = 8 << 20, watch: (mem: QueueMemory) => QueueMemory = (m) => m) {
    super(memBytes);
    this.bus = new PciBus((l) => this.logs.push(l));
    this.transport = new VirtioPciTransport(device, watch(this.mem), { msi: (vector, msg) => this.sent.push({ vector, msg }), log: (l) => this.logs.push(l) });
    this.slot = this.bus.add(this.transport.pci);
  }

  /** A config-space access of `size` bytes at `offset` of device `dev` through ECAM. */
  cfgRead(offset: number, size = 4, dev = this.slot, fn = 0): number {
    const d = new Uint8Array(size);
    this.bus.ecam.read(BigInt(PCI_ECAM_BASE + (dev << 15) + (fn << 12) + offset), d);
    return d.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  }

  cfgWrite(offset: number, value: number, size = 4, dev = this.slot, fn = 0): void {
    const d = new Uint8Array(size);
    for (let i = 0; i < size; i++) d[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.bus.ecam.write(BigInt(PCI_ECAM_BASE + (dev << 15) + (fn << 12) + offset), d);
  }

  /** The capability list, walked as a driver walks it (at most 48 entries: a loop ends). */
  capabilities(): Capability[] {
    const out: Capability[] = [];
    for (let at = this.cfgRead(CFG.CapabilityList, 1); at !== 0 && out.length < 48; at = this.cfgRead(at + 1, 1)) {
      const id = this.cfgRead(at, 1);
      const cap: Capability = { at, id };
      if (id === CAP_ID_VENDOR) Object.assign(cap, { type: this.cfgRead(at + 3, 1), bar: this.cfgRead(at + 4, 1), offset: this.cfgRead(at + 8), length: this.cfgRead(at + 12) });
      out.push(cap);
    }
    return out;
  }

  bar(i: number): number {
    return (this.cfgRead(CFG.Bar0 + 4 * i) & ~0xf) >>> 0;
  }

  /** Where virtio structure `type` is, as the capability says. */
  structure(type: number): number {
    const cap = this.capabilities().find((c) => c.id === CAP_ID_VENDOR && c.type === type);
    if (!cap) throw new Error(`no virtio capability of type ${type}`);
    return this.bar(cap.bar!) + cap.offset!;
  }

  mmioRead(addr: number, size: number): number {
    const d = new Uint8Array(size);
    this.bus.window.read(BigInt(addr), d);
    return d.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  }

  mmioWrite(addr: number, value: number, size: number): void {
    const d = new Uint8Array(size);
    for (let i = 0; i < size; i++) d[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.bus.window.write(BigInt(addr), d);
  }

  common(field: number, size: number): number {
    return this.mmioRead(this.structure(CAP.Common) + field, size);
  }

  setCommon(field: number, value: number, size: number): void {
    this.mmioWrite(this.structure(CAP.Common) + field, value, size);
  }

  /** Memory decoding and bus mastering on, as pci_enable_device and pci_set_master leave them. */
  enable(): void {
    this.cfgWrite(CFG.Command, this.cfgRead(CFG.Command, 2) | COMMAND_MEMORY | COMMAND_MASTER, 2);
  }

  /** MSI-X on, and table entry `v` set to a message with data `0x40 + v`, unmasked. */
  enableMsix(vectors: number): void {
    const cap = this.capabilities().find((c) => c.id === 0x11)!;
    const table = this.bar(1) + MSIX_TABLE;
    for (let v = 0; v < vectors; v++) {
      this.mmioWrite(table + 16 * v, 0xfee0_0000, 4);
      this.mmioWrite(table + 16 * v + 4, 0, 4);
      this.mmioWrite(table + 16 * v + 8, 0x40 + v, 4);
      this.mmioWrite(table + 16 * v + 12, 0, 4);
    }
    this.cfgWrite(cap.at + 2, MSIX_ENABLE, 2);
  }

  negotiate(features?: bigint): boolean {
    this.setCommon(COMMON.DeviceStatus, 0, 1);
    this.setCommon(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER, 1);
    this.setCommon(COMMON.DeviceFeatureSelect, 0, 4);
    let offered = BigInt(this.common(COMMON.DeviceFeature, 4));
    this.setCommon(COMMON.DeviceFeatureSelect, 1, 4);
    offered |= BigInt(this.common(COMMON.DeviceFeature, 4)) << 32n;
    const f = features ?? (offered | TRANSPORT_FEATURES);
    this.setCommon(COMMON.DriverFeatureSelect, 0, 4);
    this.setCommon(COMMON.DriverFeature, Number(f & 0xffff_ffffn), 4);
    this.setCommon(COMMON.DriverFeatureSelect, 1, 4);
    this.setCommon(COMMON.DriverFeature, Number(f >> 32n), 4);
    this.setCommon(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK, 1);
    return (this.common(COMMON.DeviceStatus, 1) & STATUS_FEATURES_OK) !== 0;
  }

  /** Queue `index` with `size` entries (at most what the device offers) on MSI-X vector `vector`, enabled. */
  setupQueue(index: number, wanted: number, vector = index): DriverQueue {
    this.setCommon(COMMON.QueueSelect, index, 2);
    const size = Math.min(wanted, this.common(COMMON.QueueSize, 2));
    const q: DriverQueue = { index, size, desc: this.alloc(16 * size), avail: this.alloc(6 + 2 * size), used: this.alloc(6 + 8 * size), availIdx: 0, lastUsed: 0, nextDesc: 0 };
    this.setCommon(COMMON.QueueSelect, index, 2);
    this.setCommon(COMMON.QueueSize, size, 2);
    this.setCommon(COMMON.QueueMsixVector, vector, 2);
    this.setCommon(COMMON.QueueDesc, q.desc, 4);
    this.setCommon(COMMON.QueueDesc + 4, 0, 4);
    this.setCommon(COMMON.QueueDriver, q.avail, 4);
    this.setCommon(COMMON.QueueDriver + 4, 0, 4);
    this.setCommon(COMMON.QueueDevice, q.used, 4);
    this.setCommon(COMMON.QueueDevice + 4, 0, 4);
    this.setCommon(COMMON.QueueEnable, 1, 2);
    this.queues[index] = q;
    return q;
  }

  driverOk(): void {
    this.setCommon(COMMON.DeviceStatus, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK, 1);
  }

  /** Enables the function and MSI-X (queue i on vector i, config on the last), negotiates, sets up every queue, DRIVER_OK. */
  start(queues: number, size = 16, features?: bigint): void {
    this.enable();
    this.enableMsix(queues + 1);
    if (!this.negotiate(features)) throw new Error('FEATURES_OK refused');
    this.setCommon(COMMON.ConfigMsixVector, queues, 2);
    for (let i = 0; i < queues; i++) this.setupQueue(i, size);
    this.driverOk();
  }

  kick(q: DriverQueue): void {
    const cap = this.capabilities().find((c) => c.id === CAP_ID_VENDOR && c.type === CAP.Notify)!;
    const multiplier = this.cfgRead(cap.at + 16);
    this.setCommon(COMMON.QueueSelect, q.index, 2);
    const off = this.common(COMMON.QueueNotifyOff, 2);
    this.mmioWrite(this.structure(CAP.Notify) + off * multiplier, q.index, 2);
  }
}
