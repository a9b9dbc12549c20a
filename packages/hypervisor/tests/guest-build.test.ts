import test from 'ava';
import { readFileSync } from 'node:fs';
import { builtinGuestPath } from '../src/guest-image.js';
import { parseElf } from '../src/loader/elf.js';
import { parseMpTable } from '../src/loader/mptable.js';
import { GuestMemory } from '../src/memory.js';
import { loadKernel } from '../src/loader/index.js';

const MiB = 2 ** 20;

test('the built-in guest was built and is an ELF64 x86-64 executable entered at 2 MiB', (t) => {
  const path = builtinGuestPath();
  t.regex(path, /guest\/build\/guest\.elf$/);
  const elf = parseElf(new Uint8Array(readFileSync(path)));
  t.is(elf.entry, 0x200000);
  t.is(elf.rawEntry, 0x200000n, 'linked physical = virtual');
  t.true(elf.segments.length >= 1 && elf.segments.length <= 3);
  for (const s of elf.segments) {
    t.true(s.paddr >= 0x200000, 'clear of the boot structures below 2 MiB');
    t.is(BigInt(s.paddr), s.vaddr);
    t.true(s.paddr + s.memsz < 0x400000, 'small enough to leave RAM for its memory test');
  }
});

test('the guest loads through loadKernel like a vmlinux, with what it will parse in place', (t) => {
  const image = new Uint8Array(readFileSync(builtinGuestPath()));
  const mem = GuestMemory.allocate(64 * MiB);
  const info = loadKernel(mem, { kernel: image, cmdline: 'exit=7 pio=10', cpus: 4, hostDecompress: true });
  t.is(info.format, 'elf');
  t.is(info.entry, 0x200000n);
  const elf = parseElf(image);
  const text = elf.segments[0];
  t.deepEqual(mem.read(text.paddr, 16), image.subarray(text.offset, text.offset + 16));
  // The first instruction is cli (0xfa): entered with interrupts off, it keeps them off.
  t.is(mem.readU8(0x200000), 0xfa);
  t.is(parseMpTable(mem, 0x9fc00).cpus.length, 4);
  const cmdPtr = mem.readU32(info.bootParams + 0x228);
  t.is(new TextDecoder().decode(mem.read(cmdPtr, 13)), 'exit=7 pio=10');
});

test('the guest image embeds its documented banner and verdict strings', (t) => {
  const text = Buffer.from(readFileSync(builtinGuestPath())).toString('latin1');
  for (const s of ['kvm-ts test guest: running at CPL3', 'self-test: PASS', 'self-test: FAIL', 'spin: looping at CPL3']) {
    t.true(text.includes(s), s);
  }
});
