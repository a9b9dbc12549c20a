/**
 * The hostile image corpus of docs/limits.md, built from scratch (nothing binary is committed):
 * each image is small and aims at one budget. The tests build them in-process (import) or as
 * files for a real `kvm-cli run` (run this script).
 *
 * usage: npx tsx scripts/hostile-corpus.ts OUTDIR   (writes OUTDIR/<name>.img, prints the names)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { concat, le32, makeBzImage } from '../tests/helpers/images.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

export interface HostileImage {
  /** What it attacks, for test titles. */
  what: string;
  bytes: Uint8Array;
  /** Guest RAM the attack asks for (`-m`), as kvm-cli spells it. */
  mem: string;
}

/**
 * A zstd frame that declares a 1.875 GiB window (no content size) and carries 10,000 one-byte raw
 * blocks: a streaming decoder allocates the window and moves it per block (the 47-minute load).
 */
export function zstdWindowBomb(): HostileImage {
  const blocks = 10_000;
  const header = Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 << 3) | 7); // FHD 0: window descriptor follows; 2^30 + 7·2^27
  const parts: Uint8Array[] = [header];
  for (let i = 0; i < blocks; i++) parts.push(Uint8Array.of(((1 << 3) | (i === blocks - 1 ? 1 : 0)) & 0xff, 0, 0, 0x7f));
  parts.push(le32(blocks));
  return { what: 'zstd window bomb', bytes: makeBzImage({ payload: concat(...parts), initSize: 64 * MiB }), mem: '2G' };
}

/** One gzip member of `bytes` zeros, repeated: gunzip decodes every member, 1 KiB in ≈ 1 MiB out. */
function gzipRepeated(head: Uint8Array, memberZeros: number, members: number): Uint8Array {
  const first = gzipSync(concat(head, new Uint8Array(memberZeros - head.length)), { level: 9 });
  const zeros = gzipSync(new Uint8Array(memberZeros), { level: 9 });
  return concat(first, ...Array.from({ length: members - 1 }, () => zeros));
}

/**
 * ~4 MiB of gzip that inflates to 4 GiB of zeros, in a bzImage whose init_size claims 2 GiB: a
 * decoder capped by guest RAM inflates gigabytes before noticing it is no ELF at all.
 */
export function gzipBomb(): HostileImage {
  return { what: 'gzip bomb', bytes: makeBzImage({ payload: gzipRepeated(new Uint8Array(0), 64 * MiB, 64), initSize: 2 * GiB - 4096 }), mem: '8G' };
}

/** The same, starting with an ELF magic: only the size budget stops it. */
export function gzipElfBomb(): HostileImage {
  const magic = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 2, 1, 1);
  return { what: 'gzip bomb behind an ELF magic', bytes: makeBzImage({ payload: gzipRepeated(magic, 64 * MiB, 64), initSize: 2 * GiB - 4096 }), mem: '8G' };
}

/** ELF64 header + `phnum` program headers (type, offset, paddr, filesz, memsz each), then `tail`. */
function elfWith(phdrs: Array<{ offset: number; paddr: number; filesz: number; memsz: number }>, tail: Uint8Array, entry: number): Uint8Array {
  const phoff = 64;
  const out = new Uint8Array(phoff + phdrs.length * 56 + tail.length);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 62, true); // EM_X86_64
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, BigInt(entry), true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phdrs.length, true);
  phdrs.forEach((p, i) => {
    const at = phoff + i * 56;
    dv.setUint32(at, 1, true); // PT_LOAD
    dv.setUint32(at + 4, 7, true);
    dv.setBigUint64(at + 8, BigInt(p.offset), true);
    dv.setBigUint64(at + 16, BigInt(p.paddr), true);
    dv.setBigUint64(at + 24, BigInt(p.paddr), true);
    dv.setBigUint64(at + 32, BigInt(p.filesz), true);
    dv.setBigUint64(at + 40, BigInt(p.memsz), true);
  });
  out.set(tail, phoff + phdrs.length * 56);
  return out;
}

/** 256 PT_LOADs over the same ~3 GiB of RAM: each one zero-fills it again (59 s and 3.2 GB before). */
export function overlappingElf(): HostileImage {
  const dataAt = 64 + 256 * 56;
  const phdrs = Array.from({ length: 256 }, () => ({ offset: dataAt, paddr: 0x100000, filesz: 16, memsz: 3 * GiB - 0x200000 }));
  return { what: 'overlapping-ELF amplification', bytes: elfWith(phdrs, new Uint8Array(16).fill(0x90), 0x100000), mem: '3G' };
}

/** Disjoint segments that all copy the same 1 MiB of the file: 256 MiB of copying from a 1 MiB file. */
export function reusedFileRangeElf(): HostileImage {
  const dataAt = 64 + 256 * 56;
  const phdrs = Array.from({ length: 256 }, (_, i) => ({ offset: dataAt, paddr: 0x100000 + i * MiB, filesz: MiB, memsz: MiB }));
  return { what: 'ELF reusing one file range 256 times', bytes: elfWith(phdrs, new Uint8Array(MiB).fill(0x90), 0x100000), mem: '512M' };
}

export const HOSTILE_IMAGES: Record<string, () => HostileImage> = {
  'zstd-window-bomb': zstdWindowBomb,
  'gzip-bomb': gzipBomb,
  'gzip-elf-bomb': gzipElfBomb,
  'overlapping-elf': overlappingElf,
  'reused-file-range-elf': reusedFileRangeElf,
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: tsx scripts/hostile-corpus.ts OUTDIR\n');
    process.exit(2);
  }
  mkdirSync(dir, { recursive: true });
  for (const [name, build] of Object.entries(HOSTILE_IMAGES)) {
    const img = build();
    writeFileSync(join(dir, `${name}.img`), img.bytes);
    process.stdout.write(`${name}\t${img.mem}\t${img.bytes.length}\t${img.what}\n`);
  }
}
