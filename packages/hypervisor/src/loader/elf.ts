/**
 * ELF64 x86-64 executables (vmlinux, or any freestanding image): PT_LOAD segments go to their
 * physical addresses. Every header field is checked against the file and guest RAM before use, and
 * the work a header can cause is bounded by the file (docs/limits.md): segments may not overlap one
 * another, together they copy at most the file's size, and their zero-filled tails cost nothing
 * (guest RAM is fresh anonymous memory, already zero).
 */
import type { GuestMemory } from '../memory.js';
import { ImageError } from './errors.js';
import { BOOT_STRUCTURES } from './layout.js';

const ELF_HEADER_SIZE = 64;
const PHDR_SIZE = 56;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const EV_CURRENT = 1;
const ET_EXEC = 2;
const EM_X86_64 = 62;
const PT_LOAD = 1;
/** More program headers than any real kernel has; bounds the work a hostile header can cause. */
const MAX_PHDRS = 256;

export interface ElfSegment {
  offset: number;
  paddr: number;
  vaddr: bigint;
  filesz: number;
  memsz: number;
}

export interface ElfImage {
  /** e_entry as written in the file (may be a kernel virtual address). */
  rawEntry: bigint;
  /** The entry point as a guest-physical address. */
  entry: number;
  segments: ElfSegment[];
}

export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ImageError(`ELF ${what} 0x${v.toString(16)} is out of range`);
  return Number(v);
}

export function parseElf(data: Uint8Array): ElfImage {
  if (!isElf(data)) throw new ImageError('not an ELF image (bad magic)');
  if (data.length < ELF_HEADER_SIZE) throw new ImageError(`ELF header truncated: file is ${data.length} bytes`);
  if (data[4] !== ELFCLASS64) throw new ImageError('ELF image is not 64-bit (ELFCLASS64 required)');
  if (data[5] !== ELFDATA2LSB) throw new ImageError('ELF image is not little-endian');
  if (data[6] !== EV_CURRENT) throw new ImageError(`ELF identification version ${data[6]} is not 1`);
  const dv = new DataView(data.buffer, data.byteOffset, data.length);
  const type = dv.getUint16(16, true);
  const machine = dv.getUint16(18, true);
  if (type !== ET_EXEC) throw new ImageError(`ELF type ${type} is not an executable (ET_EXEC)`);
  if (machine !== EM_X86_64) throw new ImageError(`ELF machine ${machine} is not x86-64`);
  const rawEntry = dv.getBigUint64(24, true);
  const phoff = u64(dv, 32, 'program header offset');
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  if (phentsize !== PHDR_SIZE) throw new ImageError(`ELF program header size ${phentsize} is not ${PHDR_SIZE}`);
  if (phnum === 0 || phnum > MAX_PHDRS) throw new ImageError(`ELF has ${phnum} program headers (expected 1..${MAX_PHDRS})`);
  if (phoff + phnum * PHDR_SIZE > data.length) throw new ImageError('ELF program headers run past the end of the file');

  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * PHDR_SIZE;
    if (dv.getUint32(ph, true) !== PT_LOAD) continue;
    const seg: ElfSegment = {
      offset: u64(dv, ph + 8, `segment ${i} file offset`),
      vaddr: dv.getBigUint64(ph + 16, true),
      paddr: u64(dv, ph + 24, `segment ${i} physical address`),
      filesz: u64(dv, ph + 32, `segment ${i} file size`),
      memsz: u64(dv, ph + 40, `segment ${i} memory size`),
    };
    if (seg.offset + seg.filesz > data.length) {
      throw new ImageError(`ELF segment ${i} (${seg.filesz} bytes at file offset ${seg.offset}) runs past the end of the ${data.length}-byte file`);
    }
    if (seg.filesz > seg.memsz) throw new ImageError(`ELF segment ${i} has file size ${seg.filesz} > memory size ${seg.memsz}`);
    if (seg.memsz > 0) segments.push(seg);
  }
  if (segments.length === 0) throw new ImageError('ELF image has no loadable (PT_LOAD) segments');
  checkDisjoint(segments);
  const copied = segments.reduce((n, s) => n + s.filesz, 0);
  if (copied > data.length) throw new ImageError(`ELF segments copy ${copied} bytes from a ${data.length}-byte file (file ranges reused)`);
  return { rawEntry, entry: physicalEntry(rawEntry, segments), segments };
}

/** Two PT_LOADs over the same guest bytes would let a small file rewrite memory many times over. */
function checkDisjoint(segments: ElfSegment[]): void {
  const byAddr = segments.map((s, i) => ({ s, i })).sort((a, b) => a.s.paddr - b.s.paddr);
  for (let k = 1; k < byAddr.length; k++) {
    const prev = byAddr[k - 1];
    const cur = byAddr[k];
    if (cur.s.paddr < prev.s.paddr + prev.s.memsz) {
      throw new ImageError(`ELF segments ${prev.i} and ${cur.i} overlap at physical 0x${cur.s.paddr.toString(16)}`);
    }
  }
}

/**
 * vmlinux's e_entry is already physical (ENTRY(phys_startup_64)), but other images give a virtual
 * entry; like linux-loader we accept either, translating through the segment that contains it.
 */
function physicalEntry(entry: bigint, segments: ElfSegment[]): number {
  for (const s of segments) {
    if (entry >= BigInt(s.paddr) && entry < BigInt(s.paddr + s.memsz)) return Number(entry);
  }
  for (const s of segments) {
    if (entry >= s.vaddr && entry < s.vaddr + BigInt(s.memsz)) return s.paddr + Number(entry - s.vaddr);
  }
  throw new ImageError(`ELF entry point 0x${entry.toString(16)} lies outside every loadable segment`);
}

/** Checks a physical range is in RAM and clear of the boot structures; `what` names it in errors. */
export function checkPlacement(mem: GuestMemory, start: number, len: number, what: string): void {
  const end = start + len;
  for (const b of BOOT_STRUCTURES) {
    if (start < b.end && end > b.start) {
      throw new ImageError(`${what} [0x${start.toString(16)}, 0x${end.toString(16)}) overlaps the ${b.name} at 0x${b.start.toString(16)}`);
    }
  }
  if (!mem.contains(start, len)) {
    if (len > mem.size) throw new ImageError(`kernel is larger than RAM: ${what} needs ${len} bytes, guest has ${mem.size}`);
    throw new ImageError(`${what} [0x${start.toString(16)}, 0x${end.toString(16)}) is outside guest RAM`);
  }
}

/**
 * Copies the PT_LOAD segments into guest memory; returns the entry and the highest byte used. The
 * memsz beyond filesz (BSS) is not written: the VM's RAM is fresh anonymous memory, already zero,
 * and the loader runs once per VM, before anything else writes there.
 */
export function loadElf(mem: GuestMemory, data: Uint8Array): { entry: number; end: number; image: ElfImage } {
  const image = parseElf(data);
  let end = 0;
  image.segments.forEach((s, i) => {
    checkPlacement(mem, s.paddr, s.memsz, `ELF segment ${i}`);
    end = Math.max(end, s.paddr + s.memsz);
  });
  for (const s of image.segments) mem.write(s.paddr, data.subarray(s.offset, s.offset + s.filesz));
  return { entry: image.entry, end, image };
}
