/**
 * bzImage parsing (Documentation/arch/x86/boot.rst). Only what a 64-bit loader needs: the setup
 * header (copied into the zero page), the protected-mode kernel, and its compressed payload.
 */
import { ImageError } from './errors.js';

/** Offsets inside the image (= inside boot_params, whose setup header sits at the same place). */
export const HDR = {
  setupSects: 0x1f1,
  bootFlag: 0x1fe,
  jump: 0x200,
  header: 0x202,
  version: 0x206,
  typeOfLoader: 0x210,
  loadflags: 0x211,
  code32Start: 0x214,
  ramdiskImage: 0x218,
  ramdiskSize: 0x21c,
  heapEndPtr: 0x224,
  cmdLinePtr: 0x228,
  initrdAddrMax: 0x22c,
  kernelAlignment: 0x230,
  relocatableKernel: 0x234,
  xloadflags: 0x236,
  cmdlineSize: 0x238,
  payloadOffset: 0x248,
  payloadLength: 0x24c,
  setupData: 0x250,
  prefAddress: 0x258,
  initSize: 0x260,
} as const;
/** End of struct setup_header's room in boot_params (edd_mbr_sig_buffer follows). */
export const SETUP_HEADER_LIMIT = 0x290;

export const BOOT_FLAG = 0xaa55;
export const HDRS_MAGIC = 0x53726448; // "HdrS"
export const MIN_PROTOCOL = 0x020c; // 2.12: xloadflags, so we can tell a 64-bit entry exists
export const XLF_KERNEL_64 = 1 << 0;
export const LOADED_HIGH = 1 << 0;
export const CAN_USE_HEAP = 1 << 7;
/** The 64-bit entry point sits this far into the protected-mode kernel (startup_64). */
export const STARTUP_64_OFFSET = 0x200;

export interface BzImage {
  version: number;
  setupSects: number;
  /** The setup header bytes, 0x1f1 up to its declared end (copied into the zero page). */
  setupHeader: Uint8Array;
  /** The protected-mode kernel (everything after the real-mode setup). */
  kernel: Uint8Array;
  payload: Uint8Array;
  prefAddress: number;
  initSize: number;
  kernelAlignment: number;
  relocatable: boolean;
  initrdAddrMax: number;
  cmdlineSize: number;
}

export function isBzImage(data: Uint8Array): boolean {
  return data.length >= HDR.header + 4 && data[HDR.header] === 0x48 && data[HDR.header + 1] === 0x64 && data[HDR.header + 2] === 0x72 && data[HDR.header + 3] === 0x53;
}

export function parseBzImage(data: Uint8Array): BzImage {
  if (data.length < 0x400) throw new ImageError(`bzImage truncated: ${data.length} bytes is less than the boot sector and setup header`);
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  if (dv.getUint32(HDR.header, true) !== HDRS_MAGIC) throw new ImageError('bzImage has no "HdrS" setup header magic at 0x202');
  if (dv.getUint16(HDR.bootFlag, true) !== BOOT_FLAG) {
    throw new ImageError(`bzImage boot flag is 0x${dv.getUint16(HDR.bootFlag, true).toString(16)}, not 0xaa55`);
  }
  const version = dv.getUint16(HDR.version, true);
  if (version < MIN_PROTOCOL) {
    throw new ImageError(`bzImage boot protocol ${version >> 8}.${String(version & 0xff).padStart(2, '0')} is too old (need 2.12 or later)`);
  }
  const xloadflags = dv.getUint16(HDR.xloadflags, true);
  if (!(xloadflags & XLF_KERNEL_64)) throw new ImageError('bzImage has no 64-bit entry point (XLF_KERNEL_64 not set in xloadflags)');
  if (!(data[HDR.loadflags] & LOADED_HIGH)) throw new ImageError('bzImage is not a "big" kernel (LOADED_HIGH not set): zImage is unsupported');
  const setupSects = data[HDR.setupSects] === 0 ? 4 : data[HDR.setupSects];
  const kernelStart = (setupSects + 1) * 512;
  if (kernelStart >= data.length) throw new ImageError(`bzImage truncated: setup (${setupSects} sectors) reaches past the ${data.length}-byte file`);
  const kernel = data.subarray(kernelStart);
  const headerEnd = Math.min(HDR.jump + 2 + data[HDR.jump + 1], SETUP_HEADER_LIMIT);
  if (headerEnd < HDR.initSize + 4) throw new ImageError(`bzImage setup header is too short (ends at 0x${headerEnd.toString(16)})`);
  const payloadOffset = dv.getUint32(HDR.payloadOffset, true);
  const payloadLength = dv.getUint32(HDR.payloadLength, true);
  if (payloadLength === 0) throw new ImageError('bzImage has no payload (payload_length is 0)');
  if (payloadOffset + payloadLength > kernel.length) {
    throw new ImageError(`bzImage truncated: payload [${payloadOffset}, +${payloadLength}) runs past the ${kernel.length}-byte protected-mode kernel`);
  }
  const prefAddress = dv.getBigUint64(HDR.prefAddress, true);
  return {
    version,
    setupSects,
    setupHeader: data.slice(HDR.setupSects, headerEnd),
    kernel,
    payload: kernel.subarray(payloadOffset, payloadOffset + payloadLength),
    prefAddress: prefAddress > 0xffffffffn ? 0 : Number(prefAddress),
    initSize: dv.getUint32(HDR.initSize, true),
    kernelAlignment: dv.getUint32(HDR.kernelAlignment, true),
    relocatable: data[HDR.relocatableKernel] !== 0,
    initrdAddrMax: dv.getUint32(HDR.initrdAddrMax, true),
    cmdlineSize: dv.getUint32(HDR.cmdlineSize, true),
  };
}
