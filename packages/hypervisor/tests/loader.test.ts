import test from 'ava';
import { GuestMemory } from '../src/memory.js';
import { ImageError, loadKernel } from '../src/loader/index.js';
import { BOOT_GDT, gdtEntry } from '../src/loader/gdt.js';
import { buildE820, E820_RAM, E820_RESERVED } from '../src/loader/e820.js';
import { makeElf, tinyKernelElf } from './helpers/images.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function boot(memBytes = 64 * MiB, extra: Partial<Parameters<typeof loadKernel>[1]> = {}) {
  const mem = GuestMemory.allocate(memBytes);
  const info = loadKernel(mem, { kernel: tinyKernelElf(), cmdline: 'console=ttyS0 exit=3', cpus: 2, hostDecompress: true, ...extra });
  return { mem, info };
}

function cString(mem: GuestMemory, addr: number): string {
  let s = '';
  for (let a = addr; mem.readU8(a) !== 0; a++) s += String.fromCharCode(mem.readU8(a));
  return s;
}

test('ELF segments land at their physical addresses; bss is fresh RAM, never written', (t) => {
  const mem = GuestMemory.allocate(64 * MiB);
  const kernel = tinyKernelElf();
  t.is(loadKernel(GuestMemory.allocate(64 * MiB), { kernel, cmdline: '', cpus: 1, hostDecompress: true }).kernelEnd, 0x1008000);
  // Bytes a loader that zero-filled would have cleared: the loader leaves bss to fresh RAM's zeros.
  mem.fill(0x1004800, 0x100, 0xee);
  const info = loadKernel(mem, { kernel, cmdline: '', cpus: 1, hostDecompress: true });
  t.is(info.format, 'elf');
  t.is(info.entry, 0x1000000n);
  t.is(mem.readU8(0x1000000), 3);
  t.is(mem.readU8(0x1000001), 10);
  t.is(mem.readU8(0x1004000), 0xd5);
  t.is(mem.readU8(0x10047ff), 0xd5);
  t.is(mem.readU8(0x1004800), 0xee, 'bss is not rewritten');
  t.is(mem.readU8(0x1007fff), 0);
  t.is(info.kernelEnd, 0x1008000);
});

test('a virtual entry point is translated through its segment', (t) => {
  const elf = makeElf({
    entry: 0xffffffff81000123n,
    segments: [{ paddr: 0x200000, vaddr: 0xffffffff81000000n, data: new Uint8Array(0x1000) }],
  });
  const mem = GuestMemory.allocate(16 * MiB);
  t.is(loadKernel(mem, { kernel: elf, cmdline: '', cpus: 1, hostDecompress: true }).entry, 0x200123n);
});

test('BootInfo follows the 64-bit boot protocol', (t) => {
  const { info } = boot();
  t.is(info.codeSelector, 0x10);
  t.is(info.dataSelector, 0x18);
  t.is(info.bootParams, 0x7000);
  t.is(info.pageTable, 0x9000);
  t.is(info.gdt.base, 0x500);
  t.is(info.gdt.limit, BOOT_GDT.length * 8 - 1);
  t.is(info.stack! % 16n, 0n);
});

test('boot GDT has flat 64-bit code at 0x10 and flat data at 0x18', (t) => {
  const { mem, info } = boot();
  const code = mem.readU64(info.gdt.base + info.codeSelector);
  const data = mem.readU64(info.gdt.base + info.dataSelector);
  t.is(code, 0x00af9b000000ffffn);
  t.is(data, 0x00cf93000000ffffn);
  t.is(mem.readU64(info.gdt.base), 0n);
  t.is(gdtEntry(0xa09b, 0x12345678, 0xfffff), 0x12af9b345678ffffn);
});

test('zero page carries a valid setup header for a bare ELF', (t) => {
  const { mem, info } = boot();
  const zp = info.bootParams;
  t.is(mem.readU16(zp + 0x1fe), 0xaa55);
  t.is(mem.readU32(zp + 0x202), 0x53726448);
  t.true(mem.readU16(zp + 0x206) >= 0x020c);
  t.is(mem.readU8(zp + 0x210), 0xff);
  t.is(mem.readU8(zp + 0x211) & 0x01, 0x01);
  t.is(mem.readU16(zp + 0x236) & 1, 1);
  t.is(mem.readU8(zp + 0x1ef), 0, 'sentinel must be 0');
  t.is(mem.readU32(zp + 0x228), info.cmdlineAddr);
  t.is(cString(mem, mem.readU32(zp + 0x228)), 'console=ttyS0 exit=3');
});

test('command line longer than cmdline_size is refused', (t) => {
  const e = t.throws(() => boot(64 * MiB, { cmdline: 'x'.repeat(2048) }), { instanceOf: ImageError });
  t.regex(e!.message, /command line is 2048 bytes.*at most 2047/);
  t.notThrows(() => boot(64 * MiB, { cmdline: 'x'.repeat(2047) }));
});

test('e820 reports RAM with the EBDA/BIOS hole reserved', (t) => {
  const { mem, info } = boot(64 * MiB);
  const n = mem.readU8(info.bootParams + 0x1e8);
  const entries = Array.from({ length: n }, (_, i) => {
    const e = info.bootParams + 0x2d0 + i * 20;
    return { addr: Number(mem.readU64(e)), size: Number(mem.readU64(e + 8)), type: mem.readU32(e + 16) };
  });
  t.deepEqual(entries, [
    { addr: 0, size: 0x9fc00, type: E820_RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820_RESERVED },
    { addr: 0x100000, size: 63 * MiB, type: E820_RAM },
  ]);
});

test('e820 reports device windows as reserved, in address order, and refuses one over RAM', (t) => {
  const mem = GuestMemory.allocate(64 * MiB);
  const e820 = buildE820(mem, [{ addr: 0xd000_0000, size: 0x3000 }]);
  t.deepEqual(e820.at(-1), { addr: 0xd000_0000, size: 0x3000, type: E820_RESERVED });
  t.deepEqual(e820.map((e) => e.addr), [...e820.map((e) => e.addr)].sort((a, b) => a - b));
  t.throws(() => buildE820(mem, [{ addr: 32 * MiB, size: 0x1000 }]), { instanceOf: RangeError, message: /overlaps RAM/ });
});

test('e820 includes RAM above 4 GiB when the guest has it', (t) => {
  // GuestMemory only needs buffers for the regions; fake the high region small to keep the test light.
  const mem = new GuestMemory([
    { gpa: 0, size: 64 * MiB, bytes: new Uint8Array(64 * MiB) },
    { gpa: 4 * GiB, size: 2 * MiB, bytes: new Uint8Array(2 * MiB) },
  ]);
  const info = loadKernel(mem, { kernel: tinyKernelElf(), cmdline: '', cpus: 1, hostDecompress: true });
  const n = mem.readU8(info.bootParams + 0x1e8);
  t.is(n, 4);
  const last = info.bootParams + 0x2d0 + 3 * 20;
  t.is(mem.readU64(last), BigInt(4 * GiB));
  t.is(mem.readU64(last + 8), BigInt(2 * MiB));
  t.is(mem.readU32(last + 16), E820_RAM);
});

test('identity page tables map the first 4 GiB with 2 MiB pages', (t) => {
  const { mem, info } = boot();
  const pml4 = mem.readU64(info.pageTable);
  t.is(pml4 & 0xfffn, 0x3n);
  const pdpt = Number(pml4 & ~0xfffn);
  for (let gib = 0; gib < 4; gib++) {
    const pdpte = mem.readU64(pdpt + gib * 8);
    t.is(pdpte & 1n, 1n);
    const pd = Number(pdpte & ~0xfffn);
    for (const i of [0, 1, 511]) {
      const pde = mem.readU64(pd + i * 8);
      t.is(pde & 0x83n, 0x83n, 'present, writable, 2 MiB page');
      t.is(pde & ~0xfffn, BigInt(gib * GiB + i * 2 * MiB));
    }
  }
  t.is(mem.readU64(pdpt + 4 * 8), 0n);
});

test('initrd goes high, page aligned, below initrd_addr_max and RAM top', (t) => {
  const initrd = new Uint8Array(10000).map((_, i) => i & 0xff);
  const { mem, info } = boot(64 * MiB, { initrd });
  const zp = info.bootParams;
  const addr = mem.readU32(zp + 0x218);
  t.is(mem.readU32(zp + 0x21c), 10000);
  t.is(mem.readU32(zp + 0xc0), 0);
  t.is(addr % 4096, 0);
  t.true(addr + 10000 <= 64 * MiB);
  t.true(addr >= info.kernelEnd);
  t.true(64 * MiB - (addr + 10000) < 4096, 'as high as possible');
  t.deepEqual(mem.read(addr, 10000), initrd);
  t.deepEqual(info.initrd, { addr, size: 10000 });
});

test('an initrd that cannot fit above the kernel is an ImageError', (t) => {
  const e = t.throws(() => boot(32 * MiB, { initrd: new Uint8Array(16 * MiB) }), { instanceOf: ImageError });
  t.regex(e!.message, /initrd of 16777216 bytes does not fit/);
});

test('the MP table is present for the requested cpu count', (t) => {
  const { mem } = boot(64 * MiB, { cpus: 3 });
  t.is(String.fromCharCode(...mem.read(0x9fc00, 4)), '_MP_');
});

test('RAM smaller than the boot area is refused clearly', (t) => {
  const mem = GuestMemory.allocate(1 * MiB);
  t.throws(() => loadKernel(mem, { kernel: tinyKernelElf(), cmdline: '', cpus: 1, hostDecompress: true }), {
    instanceOf: ImageError,
    message: /too small/,
  });
});
