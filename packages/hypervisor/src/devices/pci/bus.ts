/**
 * PCI segment 0, bus 0: a host bridge at 00:00.0 and the functions the VMM adds, reachable through
 * configuration mechanism #1 (ports 0xCF8 address, 0xCFC–0xCFF data) and an ECAM window, with
 * their BARs placed by the VMM in the 32-bit MMIO hole below 4 GiB. The bus claims the whole hole
 * on the MMIO bus and routes each access to the BAR that decodes it now, so a guest that moves or
 * disables a BAR needs no re-registration (and a BAR moved outside the hole, over RAM say, simply
 * decodes nothing: RAM accesses never leave the guest). Absent functions read as all-ones.
 */
import type { MmioDevice, PioDevice } from '../device.js';
import { hex } from '../../hex.js';
import { PciConfigError, PciFunction, BAR_COUNT } from './function.js';

/** The 32-bit MMIO hole for BARs: from the top of low RAM (3 GiB at most) up to the virtio-mmio windows. */
export const PCI_MMIO_BASE = 0xc000_0000;
export const PCI_MMIO_SIZE = 0x1000_0000;
/** ECAM (MMCONFIG) of bus 0: 32 devices × 8 functions × 4 KiB, clear of the IOAPIC and LAPIC pages. */
export const PCI_ECAM_BASE = 0xe000_0000;
export const PCI_ECAM_SIZE = 0x10_0000;
export const CONF1_ADDRESS = 0xcf8;
export const CONF1_DATA = 0xcfc;
export const CONF1_ENABLE = 0x8000_0000;
export const DEVICES_PER_BUS = 32;

/** The host bridge's ids: a generic host bridge that no guest driver binds quirks to. */
export const HOST_BRIDGE_IDS = { vendor: 0x1b36, device: 0x0008, classCode: 0x06_00_00 } as const;

/** The ranges e820 reports as reserved when a machine has the bus. */
export function pciReserved(): Array<{ addr: number; size: number }> {
  return [
    { addr: PCI_MMIO_BASE, size: PCI_MMIO_SIZE },
    { addr: PCI_ECAM_BASE, size: PCI_ECAM_SIZE },
  ];
}

export interface PciBusStats {
  /** Config accesses through 0xCF8/0xCFC and through ECAM. */
  conf1: number;
  ecam: number;
  /** Accesses to the MMIO hole that no decoding BAR took. */
  unclaimed: number;
}

/** "00:01.0" */
export function bdf(device: number, fn = 0): string {
  return `00:${device.toString(16).padStart(2, '0')}.${fn}`;
}

export class PciBus {
  private readonly slots: Array<PciFunction | undefined> = new Array<PciFunction | undefined>(DEVICES_PER_BUS).fill(undefined);
  private nextBar = PCI_MMIO_BASE;
  private address = 0;
  readonly stats: PciBusStats = { conf1: 0, ecam: 0, unclaimed: 0 };
  private reportedUnclaimed = false;
  readonly conf1: PioDevice;
  readonly ecam: MmioDevice;
  readonly window: MmioDevice;

  constructor(private readonly log: (line: string) => void) {
    this.slots[0] = new PciFunction('pci host bridge', HOST_BRIDGE_IDS);
    this.conf1 = {
      name: 'pci conf1',
      ports: [[CONF1_ADDRESS, 8]],
      read: (port, size) => this.conf1Read(port, size),
      write: (port, size, value) => this.conf1Write(port, size, value),
    };
    this.ecam = {
      name: 'pci ecam',
      ranges: [[BigInt(PCI_ECAM_BASE), BigInt(PCI_ECAM_SIZE)]],
      read: (addr, data) => this.ecamAccess(addr, data, false),
      write: (addr, data) => this.ecamAccess(addr, data, true),
    };
    this.window = {
      name: 'pci mmio hole',
      ranges: [[BigInt(PCI_MMIO_BASE), BigInt(PCI_MMIO_SIZE)]],
      read: (addr, data) => this.windowAccess(addr, data, false),
      write: (addr, data) => this.windowAccess(addr, data, true),
      counters: () => ({ ...this.stats }),
    };
  }

  /** Puts `fn` in the next free device slot with each BAR placed (naturally aligned) in the hole; returns the slot. */
  add(fn: PciFunction): number {
    const slot = this.slots.findIndex((f) => f === undefined);
    if (slot < 0) throw new PciConfigError(`at most ${DEVICES_PER_BUS - 1} PCI devices fit bus 0 (asked for one more)`);
    let at = this.nextBar;
    const placed: Array<[number, number]> = [];
    for (let i = 0; i < BAR_COUNT; i++) {
      const size = fn.barSize(i);
      if (size === undefined) continue;
      at = Math.ceil(at / size) * size;
      if (at + size > PCI_MMIO_BASE + PCI_MMIO_SIZE) throw new PciConfigError(`${fn.name}: its BARs do not fit the ${PCI_MMIO_SIZE >> 20} MiB MMIO hole`);
      placed.push([i, at]);
      at += size;
    }
    for (const [i, base] of placed) fn.placeBar(i, base);
    this.nextBar = at;
    this.slots[slot] = fn;
    return slot;
  }

  function(device: number, fn = 0): PciFunction | undefined {
    return fn === 0 ? this.slots[device] : undefined;
  }

  /** Config read of function (device, fn) on bus 0; all-ones where nothing is. */
  configRead(device: number, fn: number, offset: number, data: Uint8Array): void {
    const f = this.function(device, fn);
    if (f) f.read(offset, data);
    else data.fill(0xff);
  }

  configWrite(device: number, fn: number, offset: number, data: Uint8Array): void {
    this.function(device, fn)?.write(offset, data);
  }

  private conf1Read(port: number, size: number): number {
    this.stats.conf1++;
    if (port < CONF1_DATA) return port === CONF1_ADDRESS && size === 4 ? this.address : allOnes(size);
    const data = new Uint8Array(size);
    this.conf1Data(port, data, false);
    return data.reduce((v, b, i) => v + b * 2 ** (8 * i), 0);
  }

  private conf1Write(port: number, size: number, value: number): void {
    this.stats.conf1++;
    if (port < CONF1_DATA) {
      // Only a dword write to 0xCF8 is the address register; narrower ones are other I/O (PCI 3.0 §3.2.2.3.2).
      if (port === CONF1_ADDRESS && size === 4) this.address = (value & 0x80ff_fffc) >>> 0;
      return;
    }
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    this.conf1Data(port, data, true);
  }

  /** The bytes of an access at 0xCFC+k that fall in the data window, at register + k. */
  private conf1Data(port: number, data: Uint8Array, write: boolean): void {
    const lane = port - CONF1_DATA;
    const inside = Math.max(0, Math.min(data.length, 4 - lane));
    if (!write) data.fill(0xff);
    const a = this.address;
    const bus = (a >>> 16) & 0xff;
    if (!(a & CONF1_ENABLE) || bus !== 0 || inside === 0) return;
    const device = (a >>> 11) & 0x1f;
    const fn = (a >>> 8) & 0x7;
    const offset = (a & 0xfc) + lane;
    const part = data.subarray(0, inside);
    if (write) this.configWrite(device, fn, offset, part);
    else this.configRead(device, fn, offset, part);
  }

  private ecamAccess(addr: bigint, data: Uint8Array, write: boolean): void {
    this.stats.ecam++;
    const off = Number(addr) - PCI_ECAM_BASE;
    const device = (off >>> 15) & 0x1f;
    const fn = (off >>> 12) & 0x7;
    const reg = off & 0xfff;
    // An access that runs past its function's 4 KiB: the bytes beyond are nobody's.
    const inside = Math.min(data.length, 0x1000 - reg);
    if (!write) data.fill(0xff);
    const part = data.subarray(0, inside);
    if (write) this.configWrite(device, fn, reg, part);
    else this.configRead(device, fn, reg, part);
  }

  private windowAccess(addr: bigint, data: Uint8Array, write: boolean): void {
    const a = Number(addr);
    for (const f of this.slots) {
      if (!f) continue;
      for (const bar of f.decodedBars()) {
        if (a < bar.base || a + data.length > bar.base + bar.size) continue;
        if (write) bar.handler.write(a - bar.base, data);
        else bar.handler.read(a - bar.base, data);
        return;
      }
    }
    this.stats.unclaimed++;
    if (!write) data.fill(0xff);
    if (this.reportedUnclaimed) return;
    this.reportedUnclaimed = true;
    this.log(`pci: ${data.length}-byte ${write ? 'write' : 'read'} at ${hex(a, 8)} in the MMIO hole, where no BAR decodes (ignored; further ones counted, not logged)`);
  }
}

function allOnes(size: number): number {
  return size >= 4 ? 0xffff_ffff : (1 << (size * 8)) - 1;
}
