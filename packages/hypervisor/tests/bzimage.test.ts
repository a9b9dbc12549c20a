import test from 'ava';
import { readFileSync } from 'node:fs';
import { GuestMemory } from '../src/memory.js';
import { ImageError, loadKernel } from '../src/loader/index.js';
import { bcjX86Decode, decompressKernelPayload, detectCompression } from '../src/loader/decompress.js';
import { parseBzImage } from '../src/loader/bzimage.js';
import { parseElf } from '../src/loader/elf.js';
import { cachedTestKernel } from '../src/test-kernel.js';
import { builtinGuestPath } from '../src/guest-image.js';
import { compressPayload, haveTool, makeBzImage, tinyKernelElf, type Codec } from './helpers/images.js';
import { testNeeding } from './helpers/prerequisite.js';

const MiB = 2 ** 20;

/** gzip is Node's own; xz and zstd payloads are made with the command-line tools. */
function toolMissing(codec: Codec): string | undefined {
  return codec === 'gzip' || haveTool(codec) ? undefined : `no ${codec} command`;
}

function load(kernel: Uint8Array, hostDecompress = true, memBytes = 64 * MiB) {
  const mem = GuestMemory.allocate(memBytes);
  const info = loadKernel(mem, { kernel, cmdline: 'console=ttyS0', cpus: 1, hostDecompress });
  return { mem, info };
}

for (const codec of ['gzip', 'xz', 'zstd'] as Codec[]) {
  testNeeding(toolMissing(codec), `bzImage with a ${codec} payload is decompressed on the host and loaded as ELF`, (t) => {
    const elf = tinyKernelElf();
    const bz = makeBzImage({ payload: compressPayload(codec, elf) });
    const { mem, info } = load(bz);
    t.is(info.format, `bzImage (${codec}, decompressed on host)`);
    t.is(info.entry, 0x1000000n);
    const expected = parseElf(elf).segments[0];
    t.deepEqual(mem.read(expected.paddr, expected.filesz), elf.subarray(expected.offset, expected.offset + expected.filesz));
    // The zero page carries the bzImage's own setup header, with the loader's fields filled in.
    t.is(mem.readU16(info.bootParams + 0x206), 0x020f);
    t.is(mem.readU32(info.bootParams + 0x260), 0x100000);
    t.is(mem.readU8(info.bootParams + 0x210), 0xff);
  });
}

test('hostDecompress:false places the protected-mode kernel at pref_address and enters startup_64', (t) => {
  const bz = makeBzImage({ payload: compressPayload('gzip', tinyKernelElf()), prefAddress: 0x1000000n, initSize: 0x200000 });
  const { mem, info } = load(bz, false);
  const parsed = parseBzImage(bz);
  t.is(info.format, 'bzImage');
  t.is(info.entry, 0x1000200n);
  t.deepEqual(mem.read(0x1000000, parsed.kernel.length), parsed.kernel);
  t.is(mem.readU32(info.bootParams + 0x214), 0x1000000, 'code32_start = load address');
  t.is(info.kernelEnd, 0x1200000);
});

test('hostDecompress:false falls back to 1 MiB for a relocatable kernel when pref_address does not fit', (t) => {
  const bz = makeBzImage({ payload: compressPayload('gzip', tinyKernelElf()), prefAddress: 0x8000000n, initSize: 0x200000 });
  t.is(load(bz, false, 32 * MiB).info.entry, 0x100200n);
  const fixed = makeBzImage({ payload: compressPayload('gzip', tinyKernelElf()), prefAddress: 0x8000000n, initSize: 0x200000, relocatable: false });
  t.throws(() => load(fixed, false, 32 * MiB), { instanceOf: ImageError, message: /does not fit/ });
});

test('init_size larger than RAM is "kernel larger than RAM"', (t) => {
  const bz = makeBzImage({ payload: compressPayload('gzip', tinyKernelElf()), initSize: 0x7000000 });
  t.throws(() => load(bz, false, 32 * MiB), { instanceOf: ImageError, message: /kernel is larger than RAM/ });
});

test('unsupported compressions are named', (t) => {
  const magics: Record<string, number[]> = {
    lz4: [0x02, 0x21, 0x4c, 0x18],
    lzo: [0x89, 0x4c, 0x5a, 0x4f],
    bzip2: [0x42, 0x5a, 0x68, 0x39],
    lzma: [0x5d, 0x00, 0x00, 0x80],
  };
  for (const [name, magic] of Object.entries(magics)) {
    const payload = new Uint8Array(64);
    payload.set(magic);
    const e = t.throws(() => load(makeBzImage({ payload })), { instanceOf: ImageError });
    t.is(e!.message, `unsupported compression: ${name} (supported: gzip, xz, zstd)`);
  }
});

test('a payload whose size trailer lies is refused, not over-allocated', (t) => {
  const gz = compressPayload('gzip', tinyKernelElf());
  new DataView(gz.buffer).setUint32(gz.length - 4, 100, true);
  t.throws(() => decompressKernelPayload(gz, 64 * MiB), { instanceOf: ImageError, message: /corrupt gzip/ });
  new DataView(gz.buffer).setUint32(gz.length - 4, 0x7fffffff, true);
  t.throws(() => decompressKernelPayload(gz, 64 * MiB), { instanceOf: ImageError, message: /larger than RAM/ });
});

for (const codec of ['gzip', 'xz', 'zstd'] as Codec[]) {
  testNeeding(toolMissing(codec), `corrupt ${codec} payloads give a one-line ImageError`, (t) => {
    const good = compressPayload(codec, tinyKernelElf());
    for (const at of [0.3, 0.5, 0.8]) {
      const bad = good.slice();
      const i = Math.floor(bad.length * at);
      bad[i] ^= 0x55;
      bad[i + 1] ^= 0xaa;
      // zstd frames without a content checksum (optional) can decode a flipped literal to
      // different bytes of the right length; what must never happen is any other kind of failure.
      let out: Uint8Array | undefined;
      try {
        out = decompressKernelPayload(bad, 64 * MiB).data;
      } catch (e) {
        t.true(e instanceof ImageError, String(e));
        t.false((e as Error).message.includes('\n'));
        continue;
      }
      t.is(codec, 'zstd', `${codec} accepted a corrupt payload`);
      t.notDeepEqual(out, tinyKernelElf());
    }
    const truncated = good.slice(0, Math.floor(good.length / 2));
    t.throws(() => decompressKernelPayload(truncated, 64 * MiB), { instanceOf: ImageError });
  });
}

testNeeding(toolMissing('xz'), 'the x86 BCJ decoder inverts xz --x86 on real machine code', (t) => {
  let code: Uint8Array;
  try {
    code = new Uint8Array(readFileSync(builtinGuestPath()));
  } catch {
    code = tinyKernelElf();
  }
  // The guest's text is full of E8/E9 calls and jumps, so the round trip exercises the filter.
  const payload = compressPayload('xz', code);
  t.deepEqual(decompressKernelPayload(payload, 64 * MiB).data, code);
  // And the filter itself: it must change E8/E9 targets back and leave everything else alone.
  const buf = Uint8Array.of(0x90, 0xe8, 0x05, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90);
  bcjX86Decode(buf);
  // Encoded absolute 5 at position 1 decodes to relative 5 - (1 + 5) = -1.
  t.deepEqual([...buf.subarray(2, 6)], [0xff, 0xff, 0xff, 0xff]);
});

test('detectCompression knows the Linux payload formats', (t) => {
  t.is(detectCompression(Uint8Array.of(0x1f, 0x8b, 8)), 'gzip');
  t.is(detectCompression(Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)), 'xz');
  t.is(detectCompression(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd)), 'zstd');
  t.is(detectCompression(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46)), 'none');
  t.is(detectCompression(Uint8Array.of(1, 2, 3)), 'unknown');
});

const stock = cachedTestKernel();
testNeeding(stock ? undefined : 'no test kernel (npm run fetch downloads it)', 'stock Debian kernel loads both ways', (t) => {
  const kernel = new Uint8Array(readFileSync(stock!));
  const bz = parseBzImage(kernel);
  t.true(bz.version >= 0x020c);
  const host = load(kernel, true, 256 * MiB);
  t.regex(host.info.format, /^bzImage \((gzip|xz|zstd), decompressed on host\)$/);
  t.is(host.info.entry, 0x1000000n, 'vmlinux ENTRY(phys_startup_64)');
  t.is(String.fromCharCode(...host.mem.read(Number(host.info.bootParams) + 0x202, 4)), 'HdrS');
  const inPlace = load(kernel, false, 256 * MiB);
  t.is(inPlace.info.format, 'bzImage');
  t.is(inPlace.info.entry, BigInt(bz.prefAddress + 0x200));
  t.throws(() => load(kernel, true, 32 * MiB), { instanceOf: ImageError, message: /larger than RAM/ });
});
