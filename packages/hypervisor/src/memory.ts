/**
 * Guest physical memory as the VMM sees it: a few host buffers, each mapped at a guest-physical address.
 * Every address that reaches this module may come from the guest, so every access is checked to lie
 * wholly inside one region; anything else throws GuestMemoryError instead of touching the wrong bytes.
 */

import { hex } from './hex.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Where RAM below 4 GiB ends: the top GiB is the PCI/MMIO hole (IOAPIC, LAPIC, BIOS flash). */
export const LOW_RAM_LIMIT = 3 * GiB;
/** Where RAM that does not fit below the hole continues. */
export const HIGH_RAM_BASE = 4 * GiB;
/** Node 20 refuses external ArrayBuffers larger than this, so no single region may exceed it. */
export const MAX_REGION_BYTES = 4 * GiB;

export interface RamRange {
  gpa: number;
  size: number;
}

export interface MemoryRegion extends RamRange {
  bytes: Uint8Array;
}

export class GuestMemoryError extends Error {
  override name = 'GuestMemoryError';
}

/** The x86 RAM map for `memBytes` of RAM: low RAM up to 3 GiB, the rest from 4 GiB in pieces of at most 4 GiB. */
export function ramLayout(memBytes: number): RamRange[] {
  if (!Number.isSafeInteger(memBytes) || memBytes <= 0) {
    throw new GuestMemoryError(`memory size must be a positive integer number of bytes, got ${memBytes}`);
  }
  if (memBytes % (4 * KiB) !== 0) {
    throw new GuestMemoryError(`memory size must be a multiple of 4 KiB, got ${memBytes}`);
  }
  const ranges: RamRange[] = [{ gpa: 0, size: Math.min(memBytes, LOW_RAM_LIMIT) }];
  let rest = memBytes - ranges[0].size;
  let gpa = HIGH_RAM_BASE;
  while (rest > 0) {
    const size = Math.min(rest, MAX_REGION_BYTES);
    ranges.push({ gpa, size });
    gpa += size;
    rest -= size;
  }
  return ranges;
}

function toAddress(value: number | bigint, what: string): number {
  if (typeof value === 'bigint') {
    if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new GuestMemoryError(`${what} ${hex(value)} is out of range`);
    }
    return Number(value);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new GuestMemoryError(`${what} ${String(value)} is not a non-negative integer`);
  }
  return value;
}

export class GuestMemory {
  readonly regions: ReadonlyArray<Readonly<MemoryRegion>>;
  /** Total bytes of RAM over all regions. */
  readonly size: number;

  constructor(regions: Array<{ gpa: number; size: number; bytes: Uint8Array }>) {
    const sorted = [...regions].sort((a, b) => a.gpa - b.gpa);
    let prevEnd = 0;
    let total = 0;
    for (const r of sorted) {
      if (!Number.isSafeInteger(r.gpa) || r.gpa < 0 || !Number.isSafeInteger(r.size) || r.size <= 0) {
        throw new GuestMemoryError(`invalid memory region gpa=${r.gpa} size=${r.size}`);
      }
      if (r.bytes.length !== r.size) {
        throw new GuestMemoryError(`memory region at ${hex(r.gpa)}: buffer holds ${r.bytes.length} bytes, size says ${r.size}`);
      }
      if (r.gpa < prevEnd) throw new GuestMemoryError(`memory region at ${hex(r.gpa)} overlaps the previous one`);
      prevEnd = r.gpa + r.size;
      total += r.size;
    }
    this.regions = sorted.map((r) => Object.freeze({ gpa: r.gpa, size: r.size, bytes: r.bytes }));
    this.size = total;
  }

  /** Allocates zeroed host buffers for `ramLayout(memBytes)`. */
  static allocate(memBytes: number): GuestMemory {
    return new GuestMemory(ramLayout(memBytes).map((r) => ({ ...r, bytes: new Uint8Array(r.size) })));
  }

  /** The region holding [gpa, gpa+len) and the offset of gpa in it, or a GuestMemoryError. */
  private locate(gpaIn: number | bigint, lenIn: number): { bytes: Uint8Array; offset: number } {
    const gpa = toAddress(gpaIn, 'guest address');
    const len = toAddress(lenIn, 'access length');
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa - r.gpa + len <= r.size && (len > 0 ? gpa < r.gpa + r.size : gpa <= r.gpa + r.size)) {
        return { bytes: r.bytes, offset: gpa - r.gpa };
      }
    }
    throw new GuestMemoryError(`guest access of ${len} bytes at ${hex(gpa)} is outside guest RAM`);
  }

  /** True if [gpa, gpa+len) lies wholly inside one RAM region. */
  contains(gpa: number | bigint, len: number): boolean {
    try {
      this.locate(gpa, len);
      return true;
    } catch {
      return false;
    }
  }

  /** A live view of guest memory (writes through it reach the guest). */
  slice(gpa: number | bigint, len: number): Uint8Array {
    const { bytes, offset } = this.locate(gpa, len);
    return bytes.subarray(offset, offset + len);
  }

  /**
   * Live views of [gpa, gpa+len), split where one region ends and the next begins at the very next
   * address (the 4 GiB pieces of high RAM); a GuestMemoryError if any byte is outside RAM. For
   * buffers a guest hands a device, which may legitimately cross such a seam.
   */
  views(gpaIn: number | bigint, lenIn: number): Uint8Array[] {
    let gpa = toAddress(gpaIn, 'guest address');
    let len = toAddress(lenIn, 'access length');
    if (len === 0) return [this.slice(gpa, 0)];
    const out: Uint8Array[] = [];
    while (len > 0) {
      const r = this.regions.find((x) => gpa >= x.gpa && gpa < x.gpa + x.size);
      if (!r) throw new GuestMemoryError(`guest access of ${lenIn} bytes at ${hex(gpaIn)} is outside guest RAM`);
      const n = Math.min(len, r.gpa + r.size - gpa);
      out.push(r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + n));
      gpa += n;
      len -= n;
    }
    return out;
  }

  /** A copy of guest memory. */
  read(gpa: number | bigint, len: number): Uint8Array {
    return this.slice(gpa, len).slice();
  }

  write(gpa: number | bigint, data: Uint8Array): void {
    this.slice(gpa, data.length).set(data);
  }

  fill(gpa: number | bigint, len: number, value = 0): void {
    this.slice(gpa, len).fill(value);
  }

  private view(gpa: number | bigint, len: number): DataView {
    const s = this.slice(gpa, len);
    return new DataView(s.buffer, s.byteOffset, len);
  }

  readU8(gpa: number | bigint): number {
    return this.slice(gpa, 1)[0];
  }
  readU16(gpa: number | bigint): number {
    return this.view(gpa, 2).getUint16(0, true);
  }
  readU32(gpa: number | bigint): number {
    return this.view(gpa, 4).getUint32(0, true);
  }
  readU64(gpa: number | bigint): bigint {
    return this.view(gpa, 8).getBigUint64(0, true);
  }

  writeU8(gpa: number | bigint, value: number): void {
    this.slice(gpa, 1)[0] = value;
  }
  writeU16(gpa: number | bigint, value: number): void {
    this.view(gpa, 2).setUint16(0, value, true);
  }
  writeU32(gpa: number | bigint, value: number): void {
    this.view(gpa, 4).setUint32(0, value >>> 0, true);
  }
  writeU64(gpa: number | bigint, value: bigint | number): void {
    this.view(gpa, 8).setBigUint64(0, BigInt.asUintN(64, BigInt(value)), true);
  }
}
