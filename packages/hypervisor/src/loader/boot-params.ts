/** The zero page (struct boot_params) a 64-bit Linux kernel finds through RSI. */
import type { GuestMemory } from '../memory.js';
import { BOOT_FLAG, CAN_USE_HEAP, HDR, HDRS_MAGIC, LOADED_HIGH, SETUP_HEADER_LIMIT, XLF_KERNEL_64 } from './bzimage.js';
import { E820_MAX_ENTRIES_ZEROPAGE, type E820Entry } from './e820.js';
import { ImageError } from './errors.js';

export const BOOT_PARAMS_SIZE = 0x1000;
export const BP = {
  /** u64, boot protocol 2.14: where the kernel finds the RSDP without scanning. */
  acpiRsdpAddr: 0x070,
  extRamdiskImage: 0x0c0,
  extRamdiskSize: 0x0c4,
  extCmdLinePtr: 0x0c8,
  e820Entries: 0x1e8,
  sentinel: 0x1ef,
  e820Table: 0x2d0,
} as const;
/** "Undefined" boot loader id: we have none assigned. */
export const TYPE_OF_LOADER_UNDEFINED = 0xff;
/** Protocol version claimed for images that carry no setup header (a bare ELF). */
export const ELF_PROTOCOL_VERSION = 0x020f;
/** x86 COMMAND_LINE_SIZE, minus the NUL: what a bare ELF kernel is assumed to accept. */
export const ELF_CMDLINE_SIZE = 2047;

/** A setup header for images without one (an ELF vmlinux), so the kernel sees sane values. */
export function minimalSetupHeader(): Uint8Array {
  const zp = new Uint8Array(SETUP_HEADER_LIMIT);
  const dv = new DataView(zp.buffer);
  dv.setUint16(HDR.bootFlag, BOOT_FLAG, true);
  zp[HDR.jump] = 0xeb; // a short jmp whose displacement gives the header's length
  zp[HDR.jump + 1] = HDR.initSize + 4 - (HDR.jump + 2);
  dv.setUint32(HDR.header, HDRS_MAGIC, true);
  dv.setUint16(HDR.version, ELF_PROTOCOL_VERSION, true);
  zp[HDR.loadflags] = LOADED_HIGH;
  dv.setUint32(HDR.initrdAddrMax, 0x7fffffff, true);
  dv.setUint32(HDR.kernelAlignment, 0x200000, true);
  dv.setUint16(HDR.xloadflags, XLF_KERNEL_64, true);
  dv.setUint32(HDR.cmdlineSize, ELF_CMDLINE_SIZE, true);
  return zp.slice(HDR.setupSects, HDR.initSize + 4);
}

export interface BootParamsInput {
  /** Setup header bytes starting at offset 0x1f1 (from a bzImage, or minimalSetupHeader()). */
  setupHeader: Uint8Array;
  cmdlineAddr: number;
  initrd?: { addr: number; size: number };
  e820: E820Entry[];
  /** Guest-physical address of the ACPI RSDP, when the machine has ACPI tables. */
  acpiRsdp?: number;
}

/** Builds the zero page at `addr`. */
export function writeBootParams(mem: GuestMemory, addr: number, input: BootParamsInput): void {
  if (input.e820.length > E820_MAX_ENTRIES_ZEROPAGE) throw new ImageError(`e820 map has ${input.e820.length} entries; the zero page holds ${E820_MAX_ENTRIES_ZEROPAGE}`);
  const zp = new Uint8Array(BOOT_PARAMS_SIZE);
  const dv = new DataView(zp.buffer);
  zp.set(input.setupHeader.subarray(0, SETUP_HEADER_LIMIT - HDR.setupSects), HDR.setupSects);
  zp[HDR.typeOfLoader] = TYPE_OF_LOADER_UNDEFINED;
  // We give the kernel no real-mode heap: it is entered in 64-bit mode and never runs setup code.
  zp[HDR.loadflags] &= ~CAN_USE_HEAP;
  dv.setUint16(HDR.heapEndPtr, 0, true);
  dv.setUint32(HDR.cmdLinePtr, input.cmdlineAddr >>> 0, true);
  dv.setUint32(BP.extCmdLinePtr, Math.floor(input.cmdlineAddr / 2 ** 32), true);
  const initrd = input.initrd ?? { addr: 0, size: 0 };
  dv.setUint32(HDR.ramdiskImage, initrd.addr >>> 0, true);
  dv.setUint32(HDR.ramdiskSize, initrd.size >>> 0, true);
  dv.setUint32(BP.extRamdiskImage, Math.floor(initrd.addr / 2 ** 32), true);
  dv.setUint32(BP.extRamdiskSize, Math.floor(initrd.size / 2 ** 32), true);
  if (input.acpiRsdp !== undefined) dv.setBigUint64(BP.acpiRsdpAddr, BigInt(input.acpiRsdp), true);
  zp[BP.sentinel] = 0;
  zp[BP.e820Entries] = input.e820.length;
  input.e820.forEach((e, i) => {
    const off = BP.e820Table + i * 20;
    dv.setBigUint64(off, BigInt(e.addr), true);
    dv.setBigUint64(off + 8, BigInt(e.size), true);
    dv.setUint32(off + 16, e.type, true);
  });
  mem.write(addr, zp);
}
