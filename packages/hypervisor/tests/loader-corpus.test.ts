/**
 * Malformed images: a corpus of targeted breakages (each must give its own one-line ImageError)
 * and fast-check fuzzing (random byte mutations must only ever produce ImageError/GuestMemoryError).
 */
import test from 'ava';
import fc from 'fast-check';
import { GuestMemory, GuestMemoryError } from '../src/memory.js';
import { ImageError, loadKernel } from '../src/loader/index.js';
import { compressPayload, makeBzImage, makeElf, tinyKernelElf } from './helpers/images.js';

const MiB = 2 ** 20;
const mem = GuestMemory.allocate(32 * MiB);

function tryLoad(kernel: Uint8Array, hostDecompress = true): unknown {
  try {
    loadKernel(mem, { kernel, cmdline: 'console=ttyS0', cpus: 2, hostDecompress });
    return undefined;
  } catch (e) {
    return e;
  }
}

function patch(img: Uint8Array, f: (dv: DataView, b: Uint8Array) => void): Uint8Array {
  const copy = img.slice();
  f(new DataView(copy.buffer), copy);
  return copy;
}

const elf = tinyKernelElf();
/** Moves the first segment (which holds the entry point) to `paddr`, entry included. */
const moveSegment0 = (dv: DataView, paddr: bigint) => {
  dv.setBigUint64(PH + 24, paddr, true);
  dv.setBigUint64(24, paddr, true);
};
const PH = 64; // first program header
const bz = makeBzImage({ payload: compressPayload('gzip', elf) });

/** Two disjoint segments, the second reading the first one's 512 file bytes again. */
function reusedRange(): Uint8Array {
  const img = makeElf({ entry: 0x1000000n, segments: [{ paddr: 0x1000000, data: new Uint8Array(512) }, { paddr: 0x1100000, data: new Uint8Array(8) }] });
  const dv = new DataView(img.buffer);
  dv.setBigUint64(PH + 56 + 8, dv.getBigUint64(PH + 8, true), true);
  dv.setBigUint64(PH + 56 + 32, 512n, true);
  dv.setBigUint64(PH + 56 + 40, 512n, true);
  return img;
}

/** A gzip payload whose size trailer claims 20 MiB, in a bzImage whose init_size is 4 KiB. */
function implausible(): Uint8Array {
  const img = makeBzImage({ payload: compressPayload('gzip', elf), initSize: 0x1000 });
  const dv = new DataView(img.buffer);
  const end = (img[0x1f1] + 1) * 512 + dv.getUint32(0x248, true) + dv.getUint32(0x24c, true);
  dv.setUint32(end - 4, 20 * MiB, true);
  return img;
}

const corpus: Array<[string, Uint8Array, RegExp, boolean?]> = [
  ['empty file', new Uint8Array(0), /kernel image is empty/],
  ['random junk', new Uint8Array(4096).fill(0x41), /unrecognised kernel image/],
  ['ELF header truncated', elf.slice(0, 20), /ELF header truncated/],
  ['ELF32', patch(elf, (_, b) => (b[4] = 1)), /not 64-bit/],
  ['big-endian ELF', patch(elf, (_, b) => (b[5] = 2)), /not little-endian/],
  ['ELF ident version', patch(elf, (_, b) => (b[6] = 9)), /identification version 9/],
  ['ELF for another machine', patch(elf, (dv) => dv.setUint16(18, 3, true)), /machine 3 is not x86-64/],
  ['shared object', patch(elf, (dv) => dv.setUint16(16, 3, true)), /not an executable/],
  ['program header size', patch(elf, (dv) => dv.setUint16(54, 32, true)), /program header size 32/],
  ['no program headers', patch(elf, (dv) => dv.setUint16(56, 0, true)), /has 0 program headers/],
  ['program headers past EOF', patch(elf, (dv) => dv.setBigUint64(32, 0xfffffn, true)), /program headers run past the end/],
  ['program header offset 2^63', patch(elf, (dv) => dv.setBigUint64(32, 1n << 63n, true)), /out of range/],
  ['segment data past EOF', patch(elf, (dv) => dv.setBigUint64(PH + 32, 0x100000n, true)), /segment 0 .* runs past the end/],
  ['file size > memory size', patch(elf, (dv) => dv.setBigUint64(PH + 56 + 40, 0x10n, true)), /file size 2048 > memory size 16/],
  ['segment over the zero page', patch(elf, (dv) => moveSegment0(dv, 0x7800n)), /overlaps the zero page/],
  ['segment over the page tables', patch(elf, (dv) => moveSegment0(dv, 0xa000n)), /overlaps the page tables/],
  ['segment over the MP table', patch(elf, (dv) => moveSegment0(dv, 0x9f000n)), /overlaps the EBDA\/BIOS area/],
  ['segment over the command line', patch(elf, (dv) => moveSegment0(dv, 0x21000n)), /overlaps the command line/],
  ['kernel larger than RAM', patch(elf, (dv) => dv.setBigUint64(PH + 56 + 40, 0x4000000n, true)), /kernel is larger than RAM/],
  ['segment beyond RAM', patch(elf, (dv) => moveSegment0(dv, 0x1fff000n)), /outside guest RAM/],
  ['segment at 2^60', patch(elf, (dv) => dv.setBigUint64(PH + 24, 1n << 60n, true)), /out of range/],
  ['entry outside segments', patch(elf, (dv) => dv.setBigUint64(24, 0x5000000n, true)), /entry point 0x5000000 lies outside/],
  ['no PT_LOAD', makeElf({ entry: 0x200000n, segments: [], extraPhdrTypes: [4, 0x6474e551] }), /no loadable/],
  ['bzImage: no HdrS', patch(bz, (dv) => dv.setUint32(0x202, 0x12345678, true)), /unrecognised kernel image/],
  ['bzImage: boot flag', patch(bz, (dv) => dv.setUint16(0x1fe, 0x1234, true)), /boot flag is 0x1234/],
  ['bzImage: protocol 2.11', patch(bz, (dv) => dv.setUint16(0x206, 0x020b, true)), /boot protocol 2\.11 is too old/],
  ['bzImage: no 64-bit entry', patch(bz, (dv) => dv.setUint16(0x236, 0, true)), /no 64-bit entry point/],
  ['bzImage: zImage', patch(bz, (_, b) => (b[0x211] = 0)), /LOADED_HIGH/],
  ['bzImage: truncated header', bz.slice(0, 0x300), /bzImage truncated/],
  ['bzImage: setup past EOF', patch(bz.slice(0, 0x1000), (_, b) => (b[0x1f1] = 200)), /setup \(200 sectors\)/],
  ['bzImage: payload past EOF', patch(bz, (dv) => dv.setUint32(0x24c, 0x1000000, true)), /payload .* runs past/],
  ['bzImage: no payload', patch(bz, (dv) => dv.setUint32(0x24c, 0, true)), /no payload/],
  ['bzImage: short setup header', patch(bz, (_, b) => (b[0x201] = 0x20)), /setup header is too short/],
  ['bzImage: payload is not an ELF', makeBzImage({ payload: compressPayload('gzip', new Uint8Array(5000).fill(7)) }), /does not decompress to an ELF/],
  ['bzImage: payload not compressed', patch(bz, (dv) => dv.setUint32(0x248, 0, true)), /unrecognised kernel payload compression/],
  ['bzImage: truncated payload', bz.slice(0, bz.length - 0x200), /payload .* runs past/],
  ['bzImage in place: init_size > RAM', patch(bz, (dv) => dv.setUint32(0x260, 0x4000000, true)), /kernel is larger than RAM/, false],
  ['overlapping PT_LOADs', patch(elf, (dv) => dv.setBigUint64(PH + 56 + 24, 0x1002000n, true)), /segments 0 and 1 overlap at physical 0x1002000/],
  ['one file range loaded many times', reusedRange(), /segments copy 1024 bytes from a 696-byte file/],
  ['payload larger than init_size makes plausible', implausible(), /declares 20971520 bytes uncompressed, more than its init_size \(4096\) plus slack allows/],
];

for (const [name, image, message, hostDecompress] of corpus) {
  test(`corpus: ${name}`, (t) => {
    const e = tryLoad(image, hostDecompress ?? true);
    t.true(e instanceof ImageError, `expected ImageError, got ${String(e)}`);
    const msg = (e as Error).message;
    t.regex(msg, message);
    t.false(msg.includes('\n'), 'one line');
  });
}

test('corpus: the unmutated images load (the corpus breaks something real)', (t) => {
  t.is(tryLoad(elf), undefined);
  t.is(tryLoad(bz), undefined);
  t.is(tryLoad(bz, false), undefined);
});

test('corpus: every truncation of a valid ELF or bzImage is an ImageError', (t) => {
  for (const img of [elf, bz]) {
    for (let len = 0; len < img.length; len += img === elf ? 37 : 61) {
      const e = tryLoad(img.slice(0, len));
      t.true(e === undefined || e instanceof ImageError, `length ${len}: ${String(e)}`);
      if (len < img.length - 1024) t.true(e instanceof ImageError, `length ${len} was accepted`);
    }
  }
});

const mutation = (size: number) =>
  fc.array(
    fc.record({
      // Half the mutations hit the headers, where a flipped byte matters most.
      pos: fc.oneof(fc.integer({ min: 0, max: Math.min(size, 0x300) - 1 }), fc.integer({ min: 0, max: size - 1 })),
      value: fc.integer({ min: 0, max: 255 }),
    }),
    { minLength: 1, maxLength: 8 },
  );

function fuzz(t: import('ava').ExecutionContext, image: Uint8Array, hostDecompress: boolean, runs: number) {
  let accepted = 0;
  fc.assert(
    fc.property(mutation(image.length), (muts) => {
      const img = image.slice();
      for (const m of muts) img[m.pos] = m.value;
      const e = tryLoad(img, hostDecompress);
      if (e === undefined) {
        accepted++;
        return true;
      }
      return (e instanceof ImageError || e instanceof GuestMemoryError) && !(e as Error).message.includes('\n');
    }),
    { numRuns: runs, seed: 0x6b766d },
  );
  t.log(`${runs} mutants, ${accepted} still loadable`);
  t.pass();
}

test('fuzz: mutated ELF images only ever raise ImageError/GuestMemoryError', (t) => fuzz(t, elf, true, 400));
test('fuzz: mutated bzImages (host decompression) only ever raise ImageError/GuestMemoryError', (t) => fuzz(t, bz, true, 300));
test('fuzz: mutated bzImages (in place) only ever raise ImageError/GuestMemoryError', (t) => fuzz(t, bz, false, 300));
