/** Builders for kernel images used by the loader tests: tiny ELFs and bzImages with real payloads. */
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';

export interface SegmentSpec {
  paddr: number;
  vaddr?: bigint;
  data: Uint8Array;
  memsz?: number;
}

export interface ElfSpec {
  entry: bigint;
  segments: SegmentSpec[];
  machine?: number;
  type?: number;
  /** Extra non-LOAD program headers (type only), to check they are skipped. */
  extraPhdrTypes?: number[];
}

/** A minimal ELF64 x86-64 executable: header, program headers, then segment data. */
export function makeElf(spec: ElfSpec): Uint8Array {
  const phnum = spec.segments.length + (spec.extraPhdrTypes?.length ?? 0);
  const phoff = 64;
  let dataOff = phoff + phnum * 56;
  const offsets = spec.segments.map((s) => {
    const o = dataOff;
    dataOff += s.data.length;
    return o;
  });
  const out = new Uint8Array(dataOff);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, spec.type ?? 2, true);
  dv.setUint16(18, spec.machine ?? 62, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, spec.entry, true);
  dv.setBigUint64(32, BigInt(phoff), true);
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phnum, true);
  spec.segments.forEach((s, i) => {
    const ph = phoff + i * 56;
    dv.setUint32(ph, 1, true); // PT_LOAD
    dv.setUint32(ph + 4, 7, true);
    dv.setBigUint64(ph + 8, BigInt(offsets[i]), true);
    dv.setBigUint64(ph + 16, s.vaddr ?? BigInt(s.paddr), true);
    dv.setBigUint64(ph + 24, BigInt(s.paddr), true);
    dv.setBigUint64(ph + 32, BigInt(s.data.length), true);
    dv.setBigUint64(ph + 40, BigInt(s.memsz ?? s.data.length), true);
    dv.setBigUint64(ph + 48, 0x1000n, true);
    out.set(s.data, offsets[i]);
  });
  (spec.extraPhdrTypes ?? []).forEach((t, j) => {
    dv.setUint32(phoff + (spec.segments.length + j) * 56, t, true);
  });
  return out;
}

/** A vmlinux-like ELF: text linked at 0xffffffff81000000, loaded at 16 MiB, entry given physically. */
export function tinyKernelElf(): Uint8Array {
  const text = new Uint8Array(0x3000).map((_, i) => (i * 7 + 3) & 0xff);
  const data = new Uint8Array(0x800).fill(0xd5);
  return makeElf({
    entry: 0x1000000n,
    segments: [
      { paddr: 0x1000000, vaddr: 0xffffffff81000000n, data: text },
      { paddr: 0x1004000, vaddr: 0xffffffff81004000n, data, memsz: 0x4000 },
    ],
  });
}

export type Codec = 'gzip' | 'xz' | 'zstd';

export function haveTool(name: string): boolean {
  const r = spawnSync(name, ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

export function le32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Compresses like Linux's arch/x86/boot/compressed/Makefile: xz with the x86 BCJ filter, sizes appended. */
export function compressPayload(codec: Codec, data: Uint8Array): Uint8Array {
  if (codec === 'gzip') return new Uint8Array(gzipSync(data, { level: 9 }));
  const args = codec === 'xz' ? ['--check=crc32', '--x86', '--lzma2=preset=6', '-c'] : ['-19', '-q', '-c'];
  const r = spawnSync(codec, args, { input: data, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${codec} failed: ${r.stderr}`);
  return concat(new Uint8Array(r.stdout), le32(data.length));
}

export interface BzSpec {
  payload: Uint8Array;
  version?: number;
  xloadflags?: number;
  loadflags?: number;
  setupSects?: number;
  prefAddress?: bigint;
  initSize?: number;
  relocatable?: boolean;
  cmdlineSize?: number;
  initrdAddrMax?: number;
}

/** A bzImage: boot sector + setup header, setup sectors, then the protected-mode kernel with the payload. */
export function makeBzImage(spec: BzSpec): Uint8Array {
  const setupSects = spec.setupSects ?? 4;
  const setupLen = (setupSects + 1) * 512;
  const payloadOffset = 0x400; // after a stand-in for the decompressor's startup code
  const pm = new Uint8Array(payloadOffset + spec.payload.length + 0x100);
  pm.fill(0x90, 0, payloadOffset); // nops where startup_32/startup_64 would be
  pm.set(spec.payload, payloadOffset);
  const img = new Uint8Array(setupLen + pm.length);
  const dv = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  dv.setUint16(0x1fe, 0xaa55, true);
  img[0x200] = 0xeb;
  img[0x201] = 0x6a; // header runs to 0x26c
  dv.setUint32(0x202, 0x53726448, true);
  dv.setUint16(0x206, spec.version ?? 0x020f, true);
  img[0x211] = spec.loadflags ?? 0x01;
  dv.setUint32(0x214, 0x100000, true);
  dv.setUint32(0x22c, spec.initrdAddrMax ?? 0x7fffffff, true);
  dv.setUint32(0x230, 0x200000, true);
  img[0x234] = spec.relocatable === false ? 0 : 1;
  dv.setUint16(0x236, spec.xloadflags ?? 0x01, true);
  dv.setUint32(0x238, spec.cmdlineSize ?? 2047, true);
  dv.setUint32(0x248, payloadOffset, true);
  dv.setUint32(0x24c, spec.payload.length, true);
  dv.setBigUint64(0x258, spec.prefAddress ?? 0x1000000n, true);
  dv.setUint32(0x260, spec.initSize ?? 0x100000, true);
  img.set(pm, setupLen);
  return img;
}
