/**
 * Hand-assembled long-mode guests for tests: a GDT, identity page tables for the first 4 MiB and a
 * few bytes of code at CODE_ADDR, with the BootState that vm.setBootRegisters turns into registers.
 */
import type { GuestMemory } from '../../src/memory.js';
import type { BootState } from '../../src/arch/x86/regs.js';

export const CODE_ADDR = 0x10000;
const GDT_ADDR = 0x500;
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;

export function u32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

/** x86-64 encodings used by the test programs. */
export const asm = {
  movEdx: (v: number) => [0xba, ...u32(v)],
  movEcx: (v: number) => [0xb9, ...u32(v)],
  movEax: (v: number) => [0xb8, ...u32(v)],
  outDxAl: [0xee],
  outDxEax: [0xef],
  inDxAl: [0xec],
  inDxEax: [0xed],
  decEcx: [0xff, 0xc9],
  jnz: (rel: number) => [0x75, rel & 0xff],
  jmpSelf: [0xeb, 0xfe],
  hlt: [0xf4],
  ud2: [0x0f, 0x0b],
};

export function loadTinyGuest(mem: GuestMemory, code: number[]): BootState {
  // null, 64-bit code (selector 0x08), flat data (selector 0x10)
  mem.writeU64(GDT_ADDR, 0n);
  mem.writeU64(GDT_ADDR + 8, 0x00af_9b00_0000_ffffn);
  mem.writeU64(GDT_ADDR + 16, 0x00cf_9300_0000_ffffn);
  mem.writeU64(PML4, BigInt(PDPT | 3));
  mem.writeU64(PDPT, BigInt(PD | 3));
  mem.writeU64(PD, 0x83n); // 2 MiB page at 0, present | writable | large
  mem.writeU64(PD + 8, BigInt(0x20_0000 | 0x83));
  mem.write(CODE_ADDR, Uint8Array.from(code));
  return { entry: BigInt(CODE_ADDR), bootParams: 0, pageTable: PML4, gdt: { base: GDT_ADDR, limit: 23 }, codeSelector: 0x08, dataSelector: 0x10, stack: 0x8000n };
}

/** Writes `count` times to `port`, then writes 0 to `exitPort`. */
export function pioLoop(port: number, count: number, exitPort: number): number[] {
  const body = [...asm.outDxAl, ...asm.decEcx];
  return [...asm.movEcx(count), ...asm.movEdx(port), ...body, ...asm.jnz(-(body.length + 2)), ...asm.movEdx(exitPort), ...asm.movEax(0), ...asm.outDxAl, ...asm.hlt];
}
