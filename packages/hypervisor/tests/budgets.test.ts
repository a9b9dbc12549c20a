/**
 * The loader's budgets (docs/limits.md): the hostile image corpus is refused quickly and in little
 * memory, fuzzed payloads and headers only ever raise the documented errors within their budget,
 * the load deadline stops decoding, and the boot structures are reserved exactly where written.
 */
import test from 'ava';
import fc from 'fast-check';
import { HOSTILE_IMAGES } from '../scripts/hostile-corpus.js';
import { GuestMemory, GuestMemoryError } from '../src/memory.js';
import { ImageError, loadKernel } from '../src/loader/index.js';
import { LoadDeadlineError } from '../src/loader/errors.js';
import { decompressKernelPayload } from '../src/loader/decompress.js';
import { parseBzImage } from '../src/loader/bzimage.js';
import { parseElf } from '../src/loader/elf.js';
import { BOOT_STRUCTURES } from '../src/loader/layout.js';
import { compressPayload, haveTool, makeBzImage, tinyKernelElf, type Codec } from './helpers/images.js';
import { testNeeding } from './helpers/prerequisite.js';

const MiB = 2 ** 20;
/** Generous for a noisy 2-core machine; the images are refused in milliseconds. */
const WALL_MS = 15_000;
const RSS_GROWTH = 600 * MiB;

const documented = (e: unknown) => e instanceof ImageError || e instanceof GuestMemoryError || e instanceof LoadDeadlineError;

for (const [name, build] of Object.entries(HOSTILE_IMAGES)) {
  test.serial(`hostile image ${name} is one ImageError, within ${WALL_MS / 1000} s and ${RSS_GROWTH / MiB} MiB`, (t) => {
    const img = build();
    const mem = GuestMemory.allocate(64 * MiB);
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    const e = t.throws(() => loadKernel(mem, { kernel: img.bytes, cmdline: '', cpus: 1, hostDecompress: true }));
    const ms = performance.now() - started;
    const grown = process.memoryUsage().rss - rssBefore;
    t.true(e instanceof ImageError, String(e));
    t.false(e!.message.includes('\n'));
    t.log(`${img.what}: ${e!.message} (${ms.toFixed(0)} ms, RSS +${(grown / MiB).toFixed(0)} MiB)`);
    t.true(ms < WALL_MS, `${ms} ms`);
    t.true(grown < RSS_GROWTH, `RSS grew by ${grown} bytes`);
  });
}

test('the zstd window bomb is decoded one-shot, without allocating its 1.875 GiB window', (t) => {
  const bomb = HOSTILE_IMAGES['zstd-window-bomb']().bytes;
  const bz = parseBzImage(bomb);
  const rssBefore = process.memoryUsage().rss;
  t.throws(() => decompressKernelPayload(bz.payload, 2 ** 31), { instanceOf: ImageError, message: /does not decompress to an ELF/ });
  t.true(process.memoryUsage().rss - rssBefore < 256 * MiB);
});

test('a past deadline stops decoding with LoadDeadlineError', (t) => {
  const gz = compressPayload('gzip', tinyKernelElf());
  t.throws(() => decompressKernelPayload(gz, 64 * MiB, { deadline: performance.now() - 1 }), { instanceOf: LoadDeadlineError });
  const bz = makeBzImage({ payload: gz });
  t.throws(() => loadKernel(GuestMemory.allocate(32 * MiB), { kernel: bz, cmdline: '', cpus: 1, hostDecompress: true, deadline: 0 }), { instanceOf: LoadDeadlineError });
});

function toolMissing(codec: Codec): string | undefined {
  return codec === 'gzip' || haveTool(codec) ? undefined : `no ${codec} command`;
}

for (const codec of ['gzip', 'xz', 'zstd'] as Codec[]) {
  testNeeding(toolMissing(codec), `fuzz: mutated ${codec} payloads and size trailers raise only documented errors, each within budget`, (t) => {
    const good = compressPayload(codec, tinyKernelElf());
    const cap = 8 * MiB;
    let slowest = 0;
    fc.assert(
      fc.property(
        fc.array(fc.record({ pos: fc.nat(good.length - 1), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        fc.option(fc.integer({ min: 1, max: 2 ** 32 - 1 }), { freq: 3 }),
        (muts, trailer) => {
          const p = good.slice();
          for (const m of muts) p[m.pos] = m.value;
          if (trailer !== null) new DataView(p.buffer).setUint32(p.length - 4, trailer, true);
          const started = performance.now();
          try {
            const out = decompressKernelPayload(p, cap, { deadline: started + WALL_MS });
            if (out.data.length > cap) return false;
          } catch (e) {
            if (!documented(e) || (e as Error).message.includes('\n')) return false;
          }
          slowest = Math.max(slowest, performance.now() - started);
          return true;
        },
      ),
      { numRuns: 150, seed: 0x9 },
    );
    t.log(`slowest run ${slowest.toFixed(1)} ms`);
    t.true(slowest < WALL_MS);
  });
}

test('fuzz: random bzImage setup headers parse or raise ImageError', (t) => {
  const base = makeBzImage({ payload: compressPayload('gzip', tinyKernelElf()) });
  fc.assert(
    fc.property(
      fc.record({
        setupSects: fc.integer({ min: 0, max: 255 }),
        jumpLen: fc.integer({ min: 0, max: 255 }),
        version: fc.integer({ min: 0, max: 0xffff }),
        loadflags: fc.integer({ min: 0, max: 255 }),
        xloadflags: fc.integer({ min: 0, max: 0xffff }),
        payloadOffset: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        payloadLength: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        initSize: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        prefAddress: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      }),
      (h) => {
        const img = base.slice();
        const dv = new DataView(img.buffer);
        img[0x1f1] = h.setupSects;
        img[0x201] = h.jumpLen;
        dv.setUint16(0x206, h.version, true);
        img[0x211] = h.loadflags;
        dv.setUint16(0x236, h.xloadflags, true);
        dv.setUint32(0x248, h.payloadOffset, true);
        dv.setUint32(0x24c, h.payloadLength, true);
        dv.setUint32(0x260, h.initSize, true);
        dv.setBigUint64(0x258, h.prefAddress, true);
        try {
          const bz = parseBzImage(img);
          return bz.payload.length <= img.length && bz.kernel.length <= img.length;
        } catch (e) {
          return e instanceof ImageError && !e.message.includes('\n');
        }
      },
    ),
    { numRuns: 500, seed: 0xb2 },
  );
  t.pass();
});

test('fuzz: random ELF program headers parse or raise ImageError, never costing more than the file', (t) => {
  const header = tinyKernelElf().slice(0, 64);
  const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 1n << 24n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
  fc.assert(
    fc.property(
      fc.array(fc.record({ type: fc.constantFrom(0, 1, 1, 4), offset: u64, paddr: u64, filesz: u64, memsz: u64 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 0, max: 4096 }),
      (phdrs, tail) => {
        const img = new Uint8Array(64 + phdrs.length * 56 + tail);
        img.set(header);
        const dv = new DataView(img.buffer);
        dv.setBigUint64(32, 64n, true);
        dv.setUint16(56, phdrs.length, true);
        phdrs.forEach((p, i) => {
          const at = 64 + i * 56;
          dv.setUint32(at, p.type, true);
          dv.setBigUint64(at + 8, p.offset, true);
          dv.setBigUint64(at + 24, p.paddr, true);
          dv.setBigUint64(at + 32, p.filesz, true);
          dv.setBigUint64(at + 40, p.memsz, true);
        });
        dv.setBigUint64(24, phdrs[0].paddr, true);
        try {
          const elf = parseElf(img);
          const copied = elf.segments.reduce((n, s) => n + s.filesz, 0);
          return copied <= img.length;
        } catch (e) {
          return e instanceof ImageError && !e.message.includes('\n');
        }
      },
    ),
    { numRuns: 500, seed: 0xe1f },
  );
  t.pass();
});

test('the boot structures are disjoint and reserve every byte the loader writes below 1 MiB', (t) => {
  const sorted = [...BOOT_STRUCTURES].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) t.true(sorted[i].start >= sorted[i - 1].end, `${sorted[i - 1].name} overlaps ${sorted[i].name}`);
  // Two sentinels: a byte the loader writes differs from at least one of them, whatever its value.
  const written = new Set<number>();
  for (const sentinel of [0xaa, 0x55]) {
    const mem = GuestMemory.allocate(32 * MiB);
    mem.fill(0, 0x100000, sentinel);
    loadKernel(mem, { kernel: tinyKernelElf(), cmdline: 'console=ttyS0 a long enough command line', cpus: 254, hostDecompress: true });
    const low = mem.read(0, 0x100000);
    low.forEach((b, i) => b !== sentinel && written.add(i));
  }
  const outside = [...written].filter((a) => !BOOT_STRUCTURES.some((r) => a >= r.start && a < r.end));
  t.deepEqual(outside, [], 'bytes written outside every reservation');
  t.true(written.has(0x528) && written.has(0x530), 'the TSS descriptor and the IDT are both written');
});
